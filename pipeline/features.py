"""Hand-crafted lexical features of a URL, defined once as ONNX operators.

Every feature is defined by the ONNX op that computes it (regex token counts,
regex full matches, a character histogram). ``LexicalFeatures.transform`` runs
exactly that graph in onnxruntime, and the skl2onnx converter registered below
emits exactly the same nodes into the exported model, so the features the
model was trained on are, by construction, the features the product computes.
Regexes use RE2/Python-common syntax only (``[0-9]``, never ``\\d``).
"""
from __future__ import annotations

import string

import numpy as np
import onnx
from onnx import TensorProto, helper
from sklearn.base import BaseEstimator, TransformerMixin

ONNX_OPSET = 20  # RegexFullMatch needs ai.onnx opset 20
MS_DOMAIN = "com.microsoft"  # Tokenizer lives in onnxruntime's contrib ops
PAD = "<pad>"  # multi-character, so it can never collide with a single-char token

_SCHEME = r"(?:[A-Za-z][A-Za-z0-9+.-]*://)?"
_HOST = r"[^/?#]*"
_REST = r"(?:[:/?#].*)?"
SUSPICIOUS_TLDS = ("tk", "ml", "ga", "cf", "gq", "xyz", "top", "pw", "cc", "club", "info",
                   "biz", "ru", "cn", "online", "site", "work", "click", "link", "zip")
SHORTENERS = ("bit.ly", "goo.gl", "tinyurl.com", "ow.ly", "t.co", "is.gd", "buff.ly",
              "adf.ly", "bitly.com", "cutt.ly", "rb.gy", "shorturl.at")
KEYWORDS = ("login", "log-in", "signin", "sign-in", "logon", "secure", "account", "update",
            "verify", "verification", "confirm", "password", "banking", "bank", "webscr",
            "paypal", "ebay", "apple", "wallet", "support", "suspend", "unlock", "billing",
            "invoice", "free", "bonus", "lucky", "admin", "wp-", "dropbox", "office")

# Per-row match counts (com.microsoft Tokenizer with ``tokenexp``).
REGEX_COUNTS: dict[str, str] = {
    "n_keywords": "(?i)" + "|".join(k.replace("-", r"\-") for k in KEYWORDS),
    "n_digit_runs": "[0-9]+",
    "n_percent_escapes": "%[0-9A-Fa-f][0-9A-Fa-f]",
    "n_punycode_labels": "(?i)xn--",
    "n_double_slashes": "//",
    "n_file_extensions": r"(?i)\.(?:php|html?|asp|aspx|jsp|exe|js|cgi)",
}

# Per-row booleans (ai.onnx RegexFullMatch over the whole URL).
REGEX_FLAGS: dict[str, str] = {
    "ip_host": "(?s)" + _SCHEME + r"(?:[^/?#@]*@)?[0-9]{1,3}(?:\.[0-9]{1,3}){3}" + _REST,
    "hex_ip_host": "(?s)" + _SCHEME + r"0[xX][0-9A-Fa-f]+" + _REST,
    "has_port": "(?s)" + _SCHEME + r"[^/?#]*:[0-9]+" + r"(?:[/?#].*)?",
    "userinfo_in_host": "(?s)" + _SCHEME + r"[^/?#]*@" + _HOST + _REST,
    "suspicious_tld": "(?s)(?i)" + _SCHEME + _HOST + r"\.(?:" + "|".join(SUSPICIOUS_TLDS) + r")\.?" + _REST,
    "shortener_host": "(?s)(?i)" + _SCHEME + r"(?:www\.)?(?:" + "|".join(s.replace(".", r"\.") for s in SHORTENERS) + r")" + _REST,
    "digit_in_host": "(?s)" + _SCHEME + r"[^/?#]*[0-9]" + _HOST + _REST,
    "hyphen_in_host": "(?s)" + _SCHEME + r"[^/?#]*-" + _HOST + _REST,
    "has_query": r"(?s)[^?#]*\?.*",
    "has_fragment": r"(?s)[^#]*#.*",
    "long_host": "(?s)" + _SCHEME + r"[^/?#]{30,}" + r"(?:[/?#].*)?",
}
# Host depth: one RegexFullMatch per "host has at least k dots", summed.
HOST_DOT_LEVELS = (1, 2, 3, 4, 5)

# Character histogram over printable ASCII; everything else counts as "other".
HIST_CHARS = [c for c in string.printable if c not in "\t\n\r\x0b\x0c"]
_CHAR_GROUPS: dict[str, str] = {
    "n_digits": string.digits,
    "n_letters": string.ascii_letters,
    "n_upper": string.ascii_uppercase,
    "n_dots": ".",
    "n_hyphens": "-",
    "n_underscores": "_",
    "n_slashes": "/",
    "n_question_marks": "?",
    "n_equals": "=",
    "n_ampersands": "&",
    "n_at": "@",
    "n_percent": "%",
    "n_tilde": "~",
    "n_whitespace": " ",
    "n_other_punct": "!\"$'()*+,;<>[\\]^`{|}:#",
}

FEATURE_NAMES: list[str] = (
    ["length", "n_not_printable_ascii"]
    + list(_CHAR_GROUPS)
    + ["digit_ratio", "letter_ratio", "char_entropy", "host_dots"]
    + list(REGEX_COUNTS)
    + list(REGEX_FLAGS)
)


class _Builder:
    """Minimal node emitter; subclasses decide where the nodes go."""

    def node(self, op: str, inputs: list[str], domain: str = "", **attrs) -> str:  # pragma: no cover
        raise NotImplementedError

    def const(self, value: np.ndarray) -> str:
        tensor = onnx.numpy_helper.from_array(np.asarray(value))
        return self.node("Constant", [], value=tensor)


class _StandaloneBuilder(_Builder):
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []

    def node(self, op, inputs, domain="", **attrs):
        out = f"lex_{len(self.nodes)}_{op}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, domain=domain, **attrs))
        return out


class _Skl2OnnxBuilder(_Builder):
    def __init__(self, scope, container) -> None:
        self.scope, self.container = scope, container

    def node(self, op, inputs, domain="", **attrs):
        out = self.scope.get_unique_variable_name(f"lex_{op}")
        version = 1 if domain == MS_DOMAIN else ONNX_OPSET
        self.container.add_node(op, inputs, [out], op_domain=domain, op_version=version,
                                name=self.scope.get_unique_operator_name(f"Lex{op}"), **attrs)
        return out


def _token_count(b: _Builder, x: str, tokenexp: str) -> str:
    """[N,1] float: number of non-overlapping regex matches per row."""
    tokens = b.node("Tokenizer", [x], domain=MS_DOMAIN, mark=0, mincharnum=1,
                    pad_value=PAD, tokenexp=tokenexp)
    is_pad = b.node("Equal", [tokens, b.const(np.array(PAD, dtype=object))])
    real = b.node("Cast", [b.node("Not", [is_pad])], to=TensorProto.FLOAT)
    return b.node("ReduceSum", [real, b.const(np.array([-1], dtype=np.int64))], keepdims=0)


def _flag(b: _Builder, x: str, pattern: str) -> str:
    return b.node("Cast", [b.node("RegexFullMatch", [x], pattern=pattern)], to=TensorProto.FLOAT)


def _emit_features(b: _Builder, x: str) -> str:
    """Emit the feature nodes for string input ``x`` [N,1]; return the [N,F] float output."""
    chars = b.node("Tokenizer", [x], domain=MS_DOMAIN, mark=0, mincharnum=1,
                   pad_value=PAD, tokenexp="(?s).")
    chars_2d = b.node("Squeeze", [chars, b.const(np.array([1], dtype=np.int64))])
    is_char = b.node("Cast", [b.node("Not", [b.node("Equal", [chars_2d, b.const(np.array(PAD, dtype=object))])])],
                     to=TensorProto.FLOAT)
    length = b.node("ReduceSum", [is_char, b.const(np.array([-1], dtype=np.int64))], keepdims=1)
    hist = b.node("TfIdfVectorizer", [chars_2d], mode="TF", min_gram_length=1, max_gram_length=1,
                  max_skip_count=0, ngram_counts=[0, len(HIST_CHARS)],
                  ngram_indexes=list(range(len(HIST_CHARS))), pool_strings=HIST_CHARS)
    ascii_total = b.node("ReduceSum", [hist, b.const(np.array([-1], dtype=np.int64))], keepdims=1)
    non_ascii = b.node("Sub", [length, ascii_total])

    selector = np.zeros((len(HIST_CHARS), len(_CHAR_GROUPS)), dtype=np.float32)
    for j, members in enumerate(_CHAR_GROUPS.values()):
        for ch in members:
            selector[HIST_CHARS.index(ch), j] = 1.0
    groups = b.node("MatMul", [hist, b.const(selector)])

    safe_len = b.node("Max", [length, b.const(np.array([1.0], dtype=np.float32))])
    digits = b.node("Slice", [groups, b.const(np.array([0], np.int64)), b.const(np.array([1], np.int64)),
                              b.const(np.array([1], np.int64))])
    letters = b.node("Slice", [groups, b.const(np.array([1], np.int64)), b.const(np.array([2], np.int64)),
                               b.const(np.array([1], np.int64))])
    digit_ratio = b.node("Div", [digits, safe_len])
    letter_ratio = b.node("Div", [letters, safe_len])

    # Shannon entropy (bits) of the histogram plus one "non-ASCII" bucket.
    buckets = b.node("Concat", [hist, non_ascii], axis=1)
    p = b.node("Div", [buckets, safe_len])
    log_p = b.node("Log", [b.node("Max", [p, b.const(np.array([1e-30], dtype=np.float32))])])
    plogp = b.node("Mul", [p, log_p])
    nats = b.node("ReduceSum", [plogp, b.const(np.array([-1], dtype=np.int64))], keepdims=1)
    entropy = b.node("Mul", [nats, b.const(np.array([-1.0 / np.log(2.0)], dtype=np.float32))])

    host_dots = _flag(b, x, "(?s)" + _SCHEME + r"[^/?#]*(?:\.[^/?#]*){1}(?:[/?#].*)?")
    for level in HOST_DOT_LEVELS[1:]:
        pattern = "(?s)" + _SCHEME + r"[^/?#]*(?:\.[^/?#]*){%d}(?:[/?#].*)?" % level
        host_dots = b.node("Add", [host_dots, _flag(b, x, pattern)])

    counts = [_token_count(b, x, exp) for exp in REGEX_COUNTS.values()]
    flags = [_flag(b, x, pat) for pat in REGEX_FLAGS.values()]
    columns = [length, non_ascii, groups, digit_ratio, letter_ratio, entropy, host_dots, *counts, *flags]
    return b.node("Concat", columns, axis=1)


def feature_graph() -> onnx.ModelProto:
    """The standalone feature model: ``url`` [N,1] string -> ``features`` [N,F] float."""
    b = _StandaloneBuilder()
    out = _emit_features(b, "url")
    b.nodes.append(helper.make_node("Identity", [out], ["features"], name="features"))
    graph = helper.make_graph(
        b.nodes, "lexical_features",
        [helper.make_tensor_value_info("url", TensorProto.STRING, [None, 1])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, len(FEATURE_NAMES)])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET),
                                                   helper.make_opsetid(MS_DOMAIN, 1)],
                             producer_name="pipeline.features")


_SESSION = None


def _session():
    global _SESSION
    if _SESSION is None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        _SESSION = ort.InferenceSession(feature_graph().SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])
    return _SESSION


def as_url_column(urls) -> np.ndarray:
    """Any 1-D/2-D sequence of URLs -> object array [N,1] of ``str``."""
    return np.asarray(urls, dtype=object).reshape(-1, 1)


def lexical_features(urls, batch_size: int = 4096) -> np.ndarray:
    """Compute the feature matrix by running the feature graph in onnxruntime."""
    column = as_url_column(urls)
    if len(column) == 0:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
    session = _session()
    parts = [session.run(["features"], {"url": column[i:i + batch_size]})[0]
             for i in range(0, len(column), batch_size)]
    return np.vstack(parts).astype(np.float32, copy=False)


class LexicalFeatures(TransformerMixin, BaseEstimator):
    """Stateless transformer: raw URL strings -> lexical/structural features."""

    def fit(self, X, y=None):
        self.n_features_out_ = len(FEATURE_NAMES)
        return self

    def transform(self, X):
        return lexical_features(X)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(FEATURE_NAMES, dtype=object)


def _shape_calculator(operator):
    from skl2onnx.common.data_types import FloatTensorType

    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([n, len(FEATURE_NAMES)])


def _converter(scope, operator, container):
    b = _Skl2OnnxBuilder(scope, container)
    out = _emit_features(b, operator.inputs[0].full_name)
    container.add_node("Identity", [out], [operator.outputs[0].full_name],
                       name=scope.get_unique_operator_name("LexFeatures"))


def register_converter() -> None:
    from skl2onnx import update_registered_converter

    update_registered_converter(LexicalFeatures, "PipelineLexicalFeatures",
                                _shape_calculator, _converter)
