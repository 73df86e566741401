"""Why `dvc pull` failed, in words a contributor can act on (pure; ``pull`` runs it).

The usual reasons in CI: the remote needs credentials the run does not have
(GitHub gives no secrets to workflows triggered by pull requests from forks; or
the repository secret is missing), the DVC plugin for the remote's storage is
not installed, or the author committed a ``.dvc`` pointer without ``dvc push``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlparse

# Storage scheme -> environment variables one of which usually carries its credentials.
CREDENTIAL_ENV = {
    "s3": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
           "AWS_WEB_IDENTITY_TOKEN_FILE"),
    "gs": ("GOOGLE_APPLICATION_CREDENTIALS", "GDRIVE_CREDENTIALS_DATA"),
    "gcs": ("GOOGLE_APPLICATION_CREDENTIALS",),
    "gdrive": ("GDRIVE_CREDENTIALS_DATA",),
    "azure": ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN",
              "AZURE_CLIENT_SECRET"),
    "oss": ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET"),
    "ssh": ("SSH_AUTH_SOCK",),
    "hdfs": ("KRB5CCNAME",),
    "webhdfs": ("KRB5CCNAME",),
    "http": (), "https": (), "webdav": (), "webdavs": (),
}
PLUGIN = {"gs": "gs", "gcs": "gs", "azure": "azure", "s3": "s3", "oss": "oss", "ssh": "ssh", "gdrive": "gdrive",
          "hdfs": "hdfs", "webhdfs": "webhdfs", "webdav": "webdav", "webdavs": "webdav"}
_AUTH = re.compile(
    r"Unable to locate credentials|NoCredentialsError|InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|"
    r"AccessDenied|Access Denied|Forbidden|\b403\b|\b401\b|Unauthori[sz]ed|DefaultCredentialsError|"
    r"Anonymous caller|AuthenticationFailed|ClientAuthenticationError|Permission denied \(publickey|"
    r"Authentication failed|could not find default credentials|credentials", re.IGNORECASE)
_PLUGIN_MISSING = re.compile(r"requires '(dvc-[\w-]+)' to be installed")
_NO_REMOTE = re.compile(r"No remote provided and no default remote set")
_MISSING_FILES = re.compile(r"do not exist neither locally nor on remote|failed to pull data from the cloud")


@dataclass
class Diagnosis:
    kind: str          # credentials | plugin | no-remote | missing-data | other
    title: str
    advice: str        # markdown

    def markdown(self) -> str:
        return f"### ⚠️ {self.title}\n\n{self.advice}\n"


def scheme_of(url: str | None) -> str:
    if not url:
        return ""
    scheme = urlparse(url).scheme.lower()
    return "" if len(scheme) <= 1 else scheme  # '' (or a Windows drive letter) = a local path


def needs_credentials(url: str | None) -> bool:
    return scheme_of(url) not in ("", "file")


def _local_fix(base: str) -> str:
    return ("Or run the review on your machine and paste `build/review/report.md` into the PR:\n\n"
            f"```bash\ndvc pull && dvc repro && python -m pipeline report --base {base}\n```")


def diagnose(output: str, remote_name: str | None, remote_url: str | None, env, from_fork: bool,
             base: str = "main") -> Diagnosis:
    """Classify a failed `dvc pull` from its output and the remote's URL scheme."""
    scheme = scheme_of(remote_url)
    where = f"`{remote_name}` ({remote_url})" if remote_name else f"({remote_url})"
    plugin = _PLUGIN_MISSING.search(output)
    if plugin:
        extra = PLUGIN.get(scheme, scheme)
        return Diagnosis("plugin", f"DVC cannot reach the remote {where}: `{plugin.group(1)}` is not installed",
                         f"Add `dvc[{extra}]` to the project's dependencies (pyproject.toml) so CI installs it."
                         + (" The remote will also need credentials in CI." if needs_credentials(remote_url)
                            else ""))
    if _NO_REMOTE.search(output) or (not remote_url and _MISSING_FILES.search(output)):
        return Diagnosis("no-remote", "No DVC remote is configured, and the data is not in the local cache",
                         "Configure one (`dvc remote add -d NAME URL`, commit `.dvc/config`) and `dvc push` "
                         "the data.")
    env_names = CREDENTIAL_ENV.get(scheme, ())
    have_credentials = any(env.get(name) for name in env_names)
    auth_error = bool(_AUTH.search(output))
    if needs_credentials(remote_url) and (auth_error or not have_credentials):
        expected = ", ".join(f"`{n}`" for n in env_names) or "the remote's credentials"
        if from_fork:
            why = ("This pull request comes from a fork, and GitHub does not give repository secrets to "
                   "workflows run for forks, so this run has no credentials for it.")
            todo = ("**What to do:** a maintainer can push the branch to this repository (the run then has the "
                    "secrets), or the author can review locally. " + _local_fix(base))
        else:
            why = (f"This run has no usable credentials for it: none of {expected} is set"
                   if not have_credentials else "The credentials this run has were rejected by the storage")
            why += "."
            todo = (f"**What to do:** add the credentials as repository secrets and map them into the env of the "
                    f"workflow step that pulls the data ({expected}); check that they grant read access. "
                    + _local_fix(base))
        return Diagnosis("credentials", f"The DVC remote {where} needs credentials this run does not have",
                         f"{why}\n\n{todo}")
    if _MISSING_FILES.search(output):
        return Diagnosis("missing-data", f"The DVC remote {where} does not have the data a `.dvc` pointer names",
                         "A `.dvc` pointer was committed without pushing its data. **What to do:** on the "
                         "machine that ran `dvc add`, run `dvc push` (then re-run this check).")
    return Diagnosis("other", f"`dvc pull` failed (remote {where})",
                     "See the job log for DVC's message. " + _local_fix(base))
