"""What the model sees of a URL, defined once as ONNX operators.

Two views, both computed by ONNX ops:

* **URL parts** (:func:`url_parts_graph`): the scheme and a leading ``www.`` are
  removed (they flip meaning between data sources, see the datasheet), then the
  rest is cut into the *host* (up to the first ``/``, ``?`` or ``#``) and the
  *path* (everything after). The host is wrapped in ``^...$`` so character
  n-grams can tell a label at the start or the end of the host (``cn$`` is a
  TLD, ``^login`` a first label).
* **Lexical features** (:data:`FEATURE_NAMES`): character statistics, regex
  counts and regex flags of the host and of the path separately: how random the
  host looks, which TLD and hosting it uses, whether a brand name sits outside
  the registered domain.

``UrlParts.transform`` and ``LexicalFeatures.transform`` run exactly these
graphs in onnxruntime, and the converters registered below emit exactly the same
nodes into the exported model, so the features the model was trained on are, by
construction, the features the product computes. Regexes use RE2/Python-common
syntax only (``[0-9]``, never ``\\d``).
"""
from __future__ import annotations

import re
import string

import numpy as np
import onnx
from onnx import TensorProto, helper
from sklearn.base import BaseEstimator, TransformerMixin

ONNX_OPSET = 20  # RegexFullMatch and StringSplit need ai.onnx opset 20
MS_DOMAIN = "com.microsoft"  # Tokenizer lives in onnxruntime's contrib ops
PAD = "<pad>"  # multi-character, so it can never collide with a single-char token
HOST_START, HOST_END = "^", "$"  # wrap the host for the character n-grams

SCHEME_PREFIX = r"(?s)[A-Za-z][A-Za-z0-9+.\-]*://.*"  # the URL starts with a scheme
WWW_PREFIX = r"(?s)www\..*"
HOST_TOKEN = r"^[^/?#]*"  # the host (with userinfo and port): up to the first / ? #
PATH_TOKEN = r"(?s)[/?#].*"  # the rest, from the first / ? #

SUSPICIOUS_TLDS = ("tk", "ml", "ga", "cf", "gq", "xyz", "top", "pw", "cc", "club", "info", "biz", "ru",
                   "cn", "su", "online", "site", "work", "click", "link", "zip", "buzz", "shop", "icu",
                   "monster", "bar", "vip", "fit", "cyou", "rest", "cfd", "sbs", "live", "life", "store",
                   "fun", "space", "website", "email", "best", "ltd", "asia", "tokyo", "quest", "today")
# Second-level labels under which ccTLDs register names (example.co.jp, example.com.br ...).
SECOND_LEVEL = ("co", "com", "net", "org", "ac", "go", "ne", "or", "gov", "edu", "gr", "ed", "lg", "ad",
                "gob", "nic", "mil", "ltd", "plc", "sch", "in", "info", "biz")
# Shared hosting, site builders, dynamic DNS and tunnels: one registered domain, many unrelated owners.
HOSTING = ("duckdns.org", "ddns.net", "no-ip.com", "no-ip.org", "hopto.org", "zapto.org", "firebaseapp.com",
           "web.app", "herokuapp.com", "github.io", "gitlab.io", "netlify.app", "vercel.app", "pages.dev",
           "workers.dev", "glitch.me", "repl.co", "weebly.com", "wixsite.com", "000webhostapp.com",
           "blogspot.com", "wordpress.com", "sites.google.com", "azurewebsites.net", "cloudfront.net",
           "amazonaws.com", "appspot.com", "ngrok.io", "square.site", "godaddysites.com", "webflow.io",
           "r2.dev", "myshopify.com", "business.site", "mystrikingly.com", "jimdofree.com", "ipfs.io")
SHORTENERS = ("bit.ly", "goo.gl", "tinyurl.com", "ow.ly", "t.co", "is.gd", "buff.ly", "adf.ly", "bitly.com",
              "cutt.ly", "rb.gy", "shorturl.at", "rebrand.ly", "s.id", "kutt.it", "t.ly", "tiny.cc")
# Brands phishing imitates most (global, and the Japanese consumer brands of the JPCERT/CC feed).
BRANDS = ("paypal", "apple", "icloud", "amazon", "microsoft", "office365", "outlook", "hotmail", "google",
          "gmail", "facebook", "instagram", "whatsapp", "netflix", "ebay", "dropbox", "docusign", "adobe",
          "yahoo", "chase", "wellsfargo", "bankofamerica", "citibank", "hsbc", "barclays", "santander",
          "dhl", "fedex", "usps", "royalmail", "steam", "binance", "coinbase", "metamask", "blockchain",
          "rakuten", "mercari", "docomo", "softbank", "aeon", "saison", "smbc", "mufg", "mizuho", "jcb",
          "amex", "americanexpress", "mastercard", "sagawa", "yamato", "japanpost", "ekinet", "eki-net",
          "linkedin", "twitter", "tiktok", "telegram", "spotify", "disney", "verizon", "xfinity", "orange")
KEYWORDS = ("login", "log-in", "signin", "sign-in", "logon", "secure", "account", "update", "verify",
            "verification", "confirm", "password", "banking", "bank", "webscr", "wallet", "support",
            "suspend", "unlock", "billing", "invoice", "free", "bonus", "lucky", "admin", "wp-", "auth",
            "service", "customer", "security", "member", "card", "payment", "delivery")


def _alternatives(words) -> str:
    return "|".join(w.replace(".", r"\.").replace("-", r"\-") for w in words)


_LABEL = r"[^./?#]+"
_TLD_OF = r"(?s)(?i)(?:[^/?#]*\.)?(?:%s)\.?(?::[0-9]*)?"  # host ends with one of these TLDs

# Per-part character groups counted from one histogram (everything else counts as "other").
HIST_CHARS = [c for c in string.printable if c not in "\t\n\r\x0b\x0c"]
HOST_CHAR_GROUPS: dict[str, str] = {
    "digits": string.digits, "letters": string.ascii_letters, "vowels": "aeiouAEIOU",
    "upper": string.ascii_uppercase, "dots": ".", "hyphens": "-", "underscores": "_", "at": "@",
    "colons": ":",
}
PATH_CHAR_GROUPS: dict[str, str] = {
    "digits": string.digits, "letters": string.ascii_letters, "upper": string.ascii_uppercase,
    "dots": ".", "hyphens": "-", "underscores": "_", "slashes": "/", "question_marks": "?",
    "equals": "=", "ampersands": "&", "at": "@", "percent": "%", "tilde": "~", "whitespace": " ",
    "other_punct": "!\"$'()*+,;<>[\\]^`{|}:#",
}

# Per-part regex match counts (Tokenizer with ``tokenexp``): part -> {name: pattern}.
HOST_COUNTS: dict[str, str] = {
    "consonant_runs": "(?i)[bcdfghjklmnpqrstvwxz]{4,}",   # 'xqzt' reads like no language
    "digit_letter_switches": "[0-9][A-Za-z]|[A-Za-z][0-9]",
    "labels": _LABEL,
    "long_labels": "[^./?#]{16,}",
    "brands": "(?i)" + _alternatives(BRANDS),
    "keywords": "(?i)" + _alternatives(KEYWORDS),
    "punycode_labels": "(?i)xn--",
}
PATH_COUNTS: dict[str, str] = {
    "segments": "/[^/?#]+",
    "digit_runs": "[0-9]+",
    "percent_escapes": "%[0-9A-Fa-f][0-9A-Fa-f]",
    "brands": "(?i)" + _alternatives(BRANDS),
    "keywords": "(?i)" + _alternatives(KEYWORDS),
    "double_slashes": "//",
    "file_extensions": r"(?i)\.(?:php|html?|asp|aspx|jsp|exe|js|cgi|shtml)",
    "hex_runs": "[0-9a-fA-F]{16,}",
}
# Per-part booleans (RegexFullMatch over the whole part).
HOST_FLAGS: dict[str, str] = {
    "ip": r"(?s)(?:[^@]*@)?[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?::[0-9]*)?",
    "hex_ip": r"(?s)(?:[^@]*@)?0[xX][0-9A-Fa-f]+(?::[0-9]*)?",
    "port": r"(?s)[^@]*:[0-9]+",
    "userinfo": r"(?s).*@.*",
    "suspicious_tld": _TLD_OF % _alternatives(SUSPICIOUS_TLDS),
    "tld_com_net_org": _TLD_OF % "com|net|org",
    "tld_country_code": r"(?s)(?i)(?:[^/?#]*\.)?[a-z][a-z]\.?(?::[0-9]*)?",
    "tld_jp": _TLD_OF % "jp",
    "second_level_suffix": r"(?s)(?i)(?:[^/?#]*\.)?(?:" + _alternatives(SECOND_LEVEL) + r")\.[a-z][a-z]\.?(?::[0-9]*)?",
    "hosting": r"(?s)(?i)(?:[^/?#]*\.)?(?:" + _alternatives(HOSTING) + r")\.?(?::[0-9]*)?",
    "shortener": r"(?s)(?i)(?:" + _alternatives(SHORTENERS) + r")\.?(?::[0-9]*)?",
    # The brand is the registered name itself (paypal.com, amazon.co.jp), not a decoy label.
    "brand_is_domain": (r"(?s)(?i)(?:[^/?#]*\.)?(?:" + _alternatives(BRANDS) + r")\.(?:(?:"
                        + _alternatives(SECOND_LEVEL) + r")\.)?[a-z]{2,}\.?(?::[0-9]*)?"),
    "digit_in_last_label": r"(?s)(?:[^/?#]*\.)?[^./?#]*[0-9][^./?#]*\.[a-zA-Z]+\.?(?::[0-9]*)?",
}
PATH_FLAGS: dict[str, str] = {
    "root_only": r"/?",
    "has_query": r"(?s)[^?#]*\?.*",
    "has_fragment": r"(?s)[^#]*#.*",
    "ends_with_slash": r"(?s).*/",
}


def _stat_names(part: str, groups: dict) -> list[str]:
    return ([f"{part}_length", f"{part}_not_printable_ascii"] + [f"{part}_{g}" for g in groups]
            + [f"{part}_digit_ratio", f"{part}_letter_ratio", f"{part}_entropy"])


FEATURE_NAMES: list[str] = (
    _stat_names("host", HOST_CHAR_GROUPS) + [f"host_n_{k}" for k in HOST_COUNTS]
    + [f"host_{k}" for k in HOST_FLAGS]
    + _stat_names("path", PATH_CHAR_GROUPS) + [f"path_n_{k}" for k in PATH_COUNTS]
    + [f"path_{k}" for k in PATH_FLAGS]
)


# -- node emitters --------------------------------------------------------------------------------
class _Builder:
    """Minimal node emitter; subclasses decide where the nodes go."""

    def node(self, op: str, inputs: list[str], domain: str = "", n_outputs: int = 1, **attrs):  # pragma: no cover
        raise NotImplementedError

    def const(self, value) -> str:
        tensor = onnx.numpy_helper.from_array(np.asarray(value))
        return self.node("Constant", [], value=tensor)

    def ints(self, *values) -> str:
        return self.const(np.array(values, dtype=np.int64))


class _StandaloneBuilder(_Builder):
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []

    def node(self, op, inputs, domain="", n_outputs=1, **attrs):
        outs = [f"url_{len(self.nodes)}_{op}_{i}" for i in range(n_outputs)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=outs[0], domain=domain, **attrs))
        return outs[0] if n_outputs == 1 else outs


class Skl2OnnxBuilder(_Builder):
    """Emits into a skl2onnx container (used by the converters)."""

    def __init__(self, scope, container) -> None:
        self.scope, self.container = scope, container

    def node(self, op, inputs, domain="", n_outputs=1, **attrs):
        outs = [self.scope.get_unique_variable_name(f"url_{op}") for _ in range(n_outputs)]
        version = 1 if domain == MS_DOMAIN else ONNX_OPSET
        self.container.add_node(op, inputs, outs, op_domain=domain, op_version=version,
                                name=self.scope.get_unique_operator_name(f"Url{op}"), **attrs)
        return outs[0] if n_outputs == 1 else outs


def _column(b: _Builder, x2d: str, index: int) -> str:
    """Column ``index`` of a [N, k] tensor as [N, 1]."""
    return b.node("Slice", [x2d, b.ints(index), b.ints(index + 1), b.ints(1)])


def _blank_like(b: _Builder, x: str, fill: str) -> str:
    """A [N, 1] string tensor of ``fill`` with the batch size of [N, 1] ``x``."""
    return b.node("Expand", [b.const(np.array([[fill]], dtype=object)), b.node("Shape", [x])])


def _after_prefix(b: _Builder, x: str, test: str, delimiter: str) -> str:
    """[N,1]: the text after the first ``delimiter`` where ``test`` full-matches, else ``x`` unchanged."""
    matches = b.node("RegexFullMatch", [x], pattern=test)
    pieces = b.node("StringSplit", [_flat(b, x)], delimiter=delimiter, maxsplit=1, n_outputs=2)[0]  # [N, 0..2]
    blank = _blank_like(b, x, "")
    padded = b.node("Concat", [pieces, blank, blank], axis=1)  # at least 2 columns, whatever the batch
    return b.node("Where", [matches, _column(b, padded, 1), x])


def _flat(b: _Builder, x: str) -> str:
    """[N,1] -> [N] (Tokenizer turns [N,1] into [N,1,k]; [N] into [N,k])."""
    return b.node("Reshape", [x, b.ints(-1)])


def _regex_tokens(b: _Builder, x: str, tokenexp: str) -> str:
    """[N,k]: the non-overlapping matches of ``tokenexp`` per row, right-padded with PAD."""
    return b.node("Tokenizer", [_flat(b, x)], domain=MS_DOMAIN, mark=0, mincharnum=1, pad_value=PAD,
                  tokenexp=tokenexp)


def char_tokens(b: _Builder, x: str) -> str:
    """[N,T]: one token per character, right-padded with PAD.

    The Tokenizer's character mode (``separators=[""]``): the same tokens as the regex ``(?s).``
    (tested on empty strings, NUL, newlines, emoji, CJK) without a regex engine per character.
    """
    return b.node("Tokenizer", [_flat(b, x)], domain=MS_DOMAIN, mark=0, mincharnum=1, pad_value=PAD,
                  separators=[""])


def _first_match(b: _Builder, x: str, tokenexp: str) -> str:
    """[N,1]: the leftmost non-empty match of ``tokenexp`` per row, '' where there is none."""
    tokens = _regex_tokens(b, x, tokenexp)  # [N, 0..k]
    padded = b.node("Concat", [tokens, _blank_like(b, x, PAD)], axis=1)
    first = _column(b, padded, 0)
    return b.node("Where", [b.node("Equal", [first, b.const(np.array(PAD, dtype=object))]),
                            _blank_like(b, x, ""), first])


def emit_url_parts(b: _Builder, x: str) -> tuple[str, str]:
    """Emit (host, path) [N,1] strings for URL column ``x`` [N,1]; scheme and ``www.`` removed."""
    rest = _after_prefix(b, x, SCHEME_PREFIX, "://")
    rest = _after_prefix(b, rest, WWW_PREFIX, "www.")
    return _first_match(b, rest, HOST_TOKEN), _first_match(b, rest, PATH_TOKEN)


def emit_marked_host(b: _Builder, host: str) -> str:
    start = b.const(np.array([[HOST_START]], dtype=object))
    end = b.const(np.array([[HOST_END]], dtype=object))
    return b.node("StringConcat", [b.node("StringConcat", [start, host]), end])


def _reduce_sum(b: _Builder, x: str, keepdims: int) -> str:
    return b.node("ReduceSum", [x, b.ints(-1)], keepdims=keepdims)


def _char_stats(b: _Builder, chars: str, groups: dict, marks: str = "") -> list[str]:
    """[N,1] columns: length, non-ASCII count, one count per char group, digit/letter ratio, entropy.

    ``chars`` are the [N,T] character tokens of the part with the characters ``marks`` added once
    per row (the host's ``^...$``, so the TF-IDF member's tokens serve here too): they are taken
    off the length and the histogram again, small integers in float32, so the values are exact.
    """
    # One pass over the tokens: the histogram has a last column counting the PAD tokens, so
    # length = T - pads (integers below 2**24 in float32: exact) needs no string comparison.
    pool = HIST_CHARS + [PAD]
    counted = b.node("TfIdfVectorizer", [chars], mode="TF", min_gram_length=1, max_gram_length=1,
                     max_skip_count=0, ngram_counts=[0, len(pool)], ngram_indexes=list(range(len(pool))),
                     pool_strings=pool)
    hist = b.node("Slice", [counted, b.ints(0), b.ints(len(HIST_CHARS)), b.ints(1)])
    width = b.node("Cast", [b.node("Shape", [chars], start=1, end=2)], to=TensorProto.FLOAT)
    length = b.node("Sub", [width, _column(b, counted, len(HIST_CHARS))])
    if marks:
        length = b.node("Sub", [length, b.const(np.array([float(len(marks))], dtype=np.float32))])
        hist = b.node("Sub", [hist, b.const(np.array([float(marks.count(c)) for c in HIST_CHARS], dtype=np.float32))])
    non_ascii = b.node("Sub", [length, _reduce_sum(b, hist, 1)])
    selector = np.zeros((len(HIST_CHARS), len(groups)), dtype=np.float32)
    for j, members in enumerate(groups.values()):
        for ch in members:
            selector[HIST_CHARS.index(ch), j] = 1.0
    counts = b.node("MatMul", [hist, b.const(selector)])
    safe_len = b.node("Max", [length, b.const(np.array([1.0], dtype=np.float32))])
    names = list(groups)
    digits = _column(b, counts, names.index("digits"))
    letters = _column(b, counts, names.index("letters"))
    # Shannon entropy (bits) of the histogram plus one "non-ASCII" bucket.
    p = b.node("Div", [b.node("Concat", [hist, non_ascii], axis=1), safe_len])
    log_p = b.node("Log", [b.node("Max", [p, b.const(np.array([1e-30], dtype=np.float32))])])
    nats = _reduce_sum(b, b.node("Mul", [p, log_p]), 1)
    entropy = b.node("Mul", [nats, b.const(np.array([-1.0 / np.log(2.0)], dtype=np.float32))])
    return [length, non_ascii, counts, b.node("Div", [digits, safe_len]), b.node("Div", [letters, safe_len]),
            entropy]


def _token_counts(b: _Builder, s: str, patterns) -> str:
    """[N,k] float: the number of non-overlapping matches of each pattern per row.

    Each Tokenizer pads its rows with its own pad token; one TfIdfVectorizer counts the pads of all
    k token tensors side by side, and count = width - pads (integers in float32: exact). Four
    nodes fewer per pattern than comparing every token with the pad. No pattern can match a pad
    (checked here), so a URL cannot pass a token off as padding.
    """
    pads = [f"<pad#{i}>" for i in range(len(patterns))]
    if any(re.fullmatch(exp, pad) for exp in patterns for pad in pads):
        raise ValueError("a count pattern matches a pad token")
    tokens = [b.node("Tokenizer", [_flat(b, s)], domain=MS_DOMAIN, mark=0, mincharnum=1, pad_value=pad,
                     tokenexp=exp) for pad, exp in zip(pads, patterns)]
    widths = b.node("Concat", [b.node("Shape", [t], start=1, end=2) for t in tokens], axis=0)
    padded = b.node("TfIdfVectorizer", [b.node("Concat", tokens, axis=1)], mode="TF", min_gram_length=1,
                    max_gram_length=1, max_skip_count=0, ngram_counts=[0, len(pads)],
                    ngram_indexes=list(range(len(pads))), pool_strings=pads)
    return b.node("Sub", [b.node("Cast", [widths], to=TensorProto.FLOAT), padded])


def _flags(b: _Builder, s: str, patterns) -> str:
    """[N,k] float 0/1: does each pattern match the whole part (one Cast for the k booleans)."""
    matches = [b.node("RegexFullMatch", [s], pattern=p) for p in patterns]
    return b.node("Cast", [b.node("Concat", matches, axis=1) if len(matches) > 1 else matches[0]],
                  to=TensorProto.FLOAT)


def emit_shared(b: _Builder, x: str) -> dict[str, str]:
    """The nodes both members start from (one URL split, one character tokenization per part):
    ``host``, ``path``, ``marked_host`` [N,1] strings, ``host_chars`` (of ``^host$``) and
    ``path_chars`` [N,T] tokens. Every converter calls this on the same input; the export merges
    the identical nodes (:func:`merge_duplicate_nodes`), so they are computed once."""
    host, path = emit_url_parts(b, x)
    marked = emit_marked_host(b, host)
    return {"host": host, "path": path, "marked_host": marked, "host_chars": char_tokens(b, marked),
            "path_chars": char_tokens(b, path)}


def emit_features(b: _Builder, x: str) -> str:
    """Emit the feature nodes for URL column ``x`` [N,1]; return the [N,F] float output."""
    s = emit_shared(b, x)
    host, path = s["host"], s["path"]
    columns = [*_char_stats(b, s["host_chars"], HOST_CHAR_GROUPS, marks=HOST_START + HOST_END)]
    columns.append(_token_counts(b, host, list(HOST_COUNTS.values())))
    columns.append(_flags(b, host, HOST_FLAGS.values()))
    columns += _char_stats(b, s["path_chars"], PATH_CHAR_GROUPS)
    columns.append(_token_counts(b, path, list(PATH_COUNTS.values())))
    columns.append(_flags(b, path, PATH_FLAGS.values()))
    return b.node("Concat", columns, axis=1)


def merge_duplicate_nodes(graph: onnx.GraphProto) -> dict[str, int]:
    """Compute every node once: drop each node identical (domain, op, attributes, inputs) to an
    earlier one and rewire its readers, in one pass over the topologically ordered nodes (so
    chains of duplicates collapse). The two members and the feature blocks emit the same URL
    split and tokenizations; onnxruntime's own common-subexpression pass does not merge string or
    contrib ops. Exact: the same deterministic op on the same inputs. Returns {op: nodes dropped}."""
    seen: dict = {}
    rename: dict[str, str] = {}
    dropped: dict[str, int] = {}
    keep = []
    for node in graph.node:
        node.input[:] = [rename.get(i, i) for i in node.input]
        key = (node.domain, node.op_type, tuple(node.input), len(node.output),
               tuple(a.SerializeToString(deterministic=True) for a in sorted(node.attribute, key=lambda a: a.name)))
        if key in seen:
            rename.update(zip(node.output, seen[key].output))
            dropped[node.op_type] = dropped.get(node.op_type, 0) + 1
        else:
            seen[key] = node
            keep.append(node)
    if {o.name for o in graph.output} & set(rename):
        raise ValueError("merge_duplicate_nodes: a graph output is produced by a duplicate node")
    del graph.node[:]
    graph.node.extend(keep)
    return dropped


def _standalone(emit, outputs: dict[str, int]) -> onnx.ModelProto:
    """A model ``url`` [N,1] string -> the named outputs of ``emit``."""
    b = _StandaloneBuilder()
    produced = emit(b, "url")
    produced = produced if isinstance(produced, tuple) else (produced,)
    values = []
    for (name, elem_type), out in zip(outputs.items(), produced):
        b.nodes.append(helper.make_node("Identity", [out], [name], name=name))
        values.append(helper.make_tensor_value_info(name, elem_type, None))
    graph = helper.make_graph(b.nodes, "url_features",
                              [helper.make_tensor_value_info("url", TensorProto.STRING, [None, 1])], values)
    merge_duplicate_nodes(graph)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET),
                                                   helper.make_opsetid(MS_DOMAIN, 1)],
                             producer_name="pipeline.training.features")


def feature_graph() -> onnx.ModelProto:
    """The standalone feature model: ``url`` [N,1] string -> ``features`` [N,F] float."""
    return _standalone(emit_features, {"features": TensorProto.FLOAT})


def url_parts_graph() -> onnx.ModelProto:
    """``url`` [N,1] string -> ``host`` (marked ``^host$``) and ``path`` [N,1] strings."""
    def emit(b, x):
        host, path = emit_url_parts(b, x)
        return emit_marked_host(b, host), path
    return _standalone(emit, {"host": TensorProto.STRING, "path": TensorProto.STRING})


_SESSIONS: dict = {}


def _session(name: str, build):
    if name not in _SESSIONS:
        import onnxruntime as ort  # lazy: training never needs it; only the ONNX feature checks do

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        _SESSIONS[name] = ort.InferenceSession(build().SerializeToString(), options,
                                               providers=["CPUExecutionProvider"])
    return _SESSIONS[name]


def as_url_column(urls) -> np.ndarray:
    """Any 1-D/2-D sequence of URLs -> object array [N,1] of ``str``."""
    return np.asarray(urls, dtype=object).reshape(-1, 1)


def _run_batched(name: str, build, urls, batch_size: int) -> list[np.ndarray]:
    column = as_url_column(urls)
    session = _session(name, build)
    outputs = [o.name for o in session.get_outputs()]
    parts = [session.run(outputs, {"url": column[i:i + batch_size]}) for i in range(0, len(column), batch_size)]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(outputs))]


def lexical_features(urls, batch_size: int = 4096) -> np.ndarray:
    """The feature matrix, computed by running the feature graph in onnxruntime."""
    if len(as_url_column(urls)) == 0:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
    return _run_batched("features", feature_graph, urls, batch_size)[0].astype(np.float32, copy=False)


def url_parts(urls, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(marked hosts, paths) as 1-D object arrays, computed by the URL-parts graph in onnxruntime."""
    if len(as_url_column(urls)) == 0:
        return np.zeros(0, dtype=object), np.zeros(0, dtype=object)
    host, path = _run_batched("parts", url_parts_graph, urls, batch_size)
    return host.reshape(-1).astype(object), path.reshape(-1).astype(object)


class LexicalFeatures(TransformerMixin, BaseEstimator):
    """Stateless transformer: raw URL strings -> host and path features."""

    def fit(self, X, y=None):
        self.n_features_out_ = len(FEATURE_NAMES)
        return self

    def transform(self, X):
        return lexical_features(X)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(FEATURE_NAMES, dtype=object)


def _shape_calculator(operator):
    # lazy: skl2onnx takes ~1.4 s; only export needs it
    from skl2onnx.common.data_types import FloatTensorType

    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([n, len(FEATURE_NAMES)])


def _converter(scope, operator, container):
    b = Skl2OnnxBuilder(scope, container)
    out = emit_features(b, operator.inputs[0].full_name)
    container.add_node("Identity", [out], [operator.outputs[0].full_name],
                       name=scope.get_unique_operator_name("LexFeatures"))


def register_converter() -> None:
    # lazy: as in _shape_calculator
    from skl2onnx import update_registered_converter

    update_registered_converter(LexicalFeatures, "PipelineLexicalFeatures",
                                _shape_calculator, _converter)
