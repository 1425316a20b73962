"""Reading error texts as real reports carry them, and sorting them into a few kinds.

Texts arrive wrapped: `openai.AuthenticationError: Error code: 401 - {'error': {...}}` (Python-dict quoting),
azure-core `ClientAuthenticationError: (PermissionDenied) ... Code: ... Message: ...`, .NET
`Azure.RequestFailedException ... Status: 401 (PermissionDenied) ... Content: {...}`, JSON escaped inside
strings, redacted ids, and gateways' HTML pages. Classification scans the whole unwrapped text with cheap
substring checks (regexes run only to pull out details once a keyword is known to be there); the result is
cached per (status, code, message).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from shared.core.phrases import PhraseFamily

# Kinds of text, one per family of causes (the engine maps them to catalogue ids with the live evidence).
EMPTY = "empty"  # no text, or nothing beyond "401 Unauthorized"
PERMISSION = "permission"  # authenticated, authorization (data action) denied
AUDIENCE = "audience"
BAD_CREDENTIAL = "bad_bearer"  # token missing, invalid or expired
TENANT = "tenant"
LOCAL_AUTH = "local_auth"
INVALID_KEY = "invalid_key"
MISSING_KEY = "missing_key"
NETWORK = "network"
NOT_FOUND = "not_found"
BLOCKED = "blocked"
CONTROL_PLANE = "control_plane"  # an ARM (management) authorization failure: not an inference data role
SIGN_IN = "sign_in"  # no token was issued: an AADSTS error or a credential chain that failed
WRONG_ENDPOINT = "wrong_endpoint"  # the request reached another service than the account
DEPENDENCY_ROLE = "dependency_role"  # the account's (or project's) own identity refused by a dependency
DEPENDENCY_NETWORK = "dependency_network"  # the account's own call to a dependency blocked by its network rules
IDENTITY_OFF = "identity_off"  # the managed identity a feature needs is not enabled
OTHER = "other"

MAX_TEXT = 20_000  # longer texts are cut before analysis (stack traces); the signal keeps the original
_DISPLAY = 300

_STANDARD_AUDIENCE = "cognitiveservices.azure"
# The service's catch-all 401: it does not say which of missing, invalid, wrong audience or expired applies.
GENERIC_401_PHRASE = "access token is missing, invalid, audience is incorrect, or have expired"


@dataclass(frozen=True, slots=True)
class TextFacts:
    kind: str
    strong: bool  # a specific code or phrase matched (as opposed to a status-only or HTML guess)
    code: str | None = None  # the service's error code, unwrapped
    message: str | None = None  # the service's message, unwrapped, whitespace-collapsed, shortened
    phrase: str = ""  # what matched, quoted in evidence lines
    data_action: str | None = None  # Microsoft.CognitiveServices/accounts/<ns>/... named by a PermissionDenied
    route: str | None = None  # "POST /api/projects/{projectName}/assistants" named by a PermissionDenied
    principal: str | None = None  # the principal named in the text (GUID, UPN or a redaction)
    audience: str | None = None  # the audience(s) the text names
    token_tenant: str | None = None
    wrong_endpoint_possible: bool = False
    html: bool = False
    # What the kind's wording is keyed on: the AADSTS code or credential problem, the wrong endpoint's kind, the
    # dependency refused (search, storage, key vault), the sub-cause of a non-access error.
    detail: str | None = None
    dependency_host: str | None = None  # the dependency's host the text names (e.g. x.search.windows.net)



# Each field's slot descriptor, in the constructor's order: _facts sets them without the frozen dataclass's
# object.__setattr__ per field, which made building the facts a tenth of a text's analysis.
_FACT_SETTERS = tuple(vars(TextFacts)[name].__set__ for name in TextFacts.__slots__)


def _facts(kind: str, strong: bool, code: str | None = None, message: str | None = None, phrase: str = "",
           data_action: str | None = None, route: str | None = None, principal: str | None = None,
           audience: str | None = None, token_tenant: str | None = None, wrong_endpoint_possible: bool = False,
           html: bool = False, detail: str | None = None, dependency_host: str | None = None) -> TextFacts:
    """The same value as TextFacts(...) with the same arguments: every slot is set."""
    facts = object.__new__(TextFacts)
    (set_kind, set_strong, set_code, set_message, set_phrase, set_data_action, set_route, set_principal, set_audience,
     set_token_tenant, set_wrong_endpoint_possible, set_html, set_detail, set_dependency_host) = _FACT_SETTERS
    set_kind(facts, kind)
    set_strong(facts, strong)
    set_code(facts, code)
    set_message(facts, message)
    set_phrase(facts, phrase)
    set_data_action(facts, data_action)
    set_route(facts, route)
    set_principal(facts, principal)
    set_audience(facts, audience)
    set_token_tenant(facts, token_tenant)
    set_wrong_endpoint_possible(facts, wrong_endpoint_possible)
    set_html(facts, html)
    set_detail(facts, detail)
    set_dependency_host(facts, dependency_host)
    return facts

# ---- unwrapping ---------------------------------------------------------------------------------------------

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_H1 = re.compile(r"<h1[^>]*>(.*?)</h1>", re.IGNORECASE | re.DOTALL)
# `["']code["']\s*:\s*(?:(["'])(.*?)\1|(\d{3}))` from its word on, the quote before it looked behind: a pattern
# that starts with a literal is found with a fast substring search (that one tries every quote of the text).
_JSON_CODE_WORD = re.compile(r"""(?<=["'])code["']\s*:\s*(?:(["'])(.*?)\1|(\d{3}))""", re.DOTALL)
# Where a quoted "message" value starts; its end is found by _quoted_end.
_JSON_MESSAGE_START = re.compile(r"""message["']\s*:\s*(["'])""")  # the quote before it: checked by the caller
_CODE_MESSAGE_LINES = re.compile(r"Code:\s*([^\n\r]+?)\s*[\r\n]+\s*Message:\s*([^\n\r]+)")
_DOTNET_ERROR_CODE = re.compile(r"ErrorCode:\s*(\w[\w.]*)")
_NO_CODE = frozenset({"none", "null", ""})
_STATUS_PAREN = re.compile(r"(?:Error|Exception)\s*:\s*\((\d{3})\)\s*(?:([A-Za-z]\w*):)?\s*([^\r\n]*)")
_CODE_PAREN = re.compile(r"(?:Error|Exception)\s*:\s*\(([A-Za-z][\w .]*?)\)\s*([^\r\n]*)")
# `\b[1-5]\d\d\s*\(([A-Za-z]\w+)\)`, with the word boundary checked after the first digit: a pattern that starts
# with a character class lets the regex engine skip every other character fast.
_STATUS_PAREN_CODE = re.compile(r"[1-5](?<!\w[1-5])\d\d\s*\(([A-Za-z]\w+)\)")


def _unescape(text: str) -> str:
    """Undo JSON-in-string escaping (`\\"`, `\\u0022`) that reports pick up when errors are re-serialized.

    Only texts that show such escapes are touched, so Windows paths in stack traces stay as they are.
    """
    json_like = '":' in text or "':" in text
    if '\\"' not in text and "\\u00" not in text and not (json_like and "\\n" in text):
        return text
    for _ in range(3):
        before = text
        text = (
            text.replace("\\\\", "\\")
            .replace("\\u0022", '"')
            .replace("\\u0027", "'")
            .replace('\\"', '"')
            .replace("\\r\\n", "\n")
            .replace("\\n", "\n")
        )
        if text == before:
            break
    return text


def _json_codes(text: str) -> list[re.Match[str]]:
    """What finditer finds with the pattern that starts at the quote (groups 2 and 3 alike): a match starts there,
    so one whose quote lies inside the previous match (before where the search resumes) is not one."""
    found = []
    at = 0
    while (match := _JSON_CODE_WORD.search(text, at)) is not None:
        if match.start() - 1 < at:
            at = match.start() + 1
            continue
        found.append(match)
        at = match.end()
    return found


def _json_messages(text: str) -> list[str]:
    """Every quoted `message` value, as `["']message["']\\s*:\\s*(["'])((?:\\\\.|(?!\\1).)*)\\1` finds them with
    finditer, without that pattern's exponential backtracking on backslashes with no closing quote."""
    values = []
    at = 0
    while (start := _JSON_MESSAGE_START.search(text, at)) is not None:
        if start.start() - 1 < at or text[start.start() - 1] not in "\"'":  # no quote before, or one taken
            at = start.start() + 1
            continue
        quote = start.group(1)
        end = _quoted_end(text, start.end(), quote)
        if end < 0:
            at = start.start() + 1
            continue
        values.append(text[start.end():end])
        at = end + 1
    return values


def _quoted_end(text: str, begin: int, quote: str) -> int:
    """Where `(?:\\\\.|(?!quote).)*quote` matching from `begin` puts its closing quote (-1: no match), as the regex
    engine finds it. Any character but the quote may stand alone, so a match exists whenever a quote follows; the
    engine pairs each backslash with the next character first, and keeps the pair when a quote still follows it."""
    if (end := _first_unescaped(text, begin, quote)) >= 0:
        return end  # every backslash paired: the engine's first try
    last = text.rfind(quote, begin)
    if last < 0:
        return -1
    at = begin
    while text[at] != quote:
        at += 2 if text[at] == "\\" and at + 2 <= last else 1
    return at


def _first_unescaped(text: str, begin: int, quote: str) -> int:
    """Where `(?:\\\\.|[^\\\\quote])*quote` matching from `begin` ends, less one (-1: no match): the first quote
    after an even run of backslashes (pairs), found with str.find instead of the regex engine's step per character.
    A run of backslashes always starts where a pair or a plain character ends, so its length alone decides."""
    at = begin
    while (found := text.find(quote, at)) >= 0:
        run = found
        while run > begin and text[run - 1] == "\\":
            run -= 1
        if (found - run) % 2 == 0:
            return found
        at = found + 1
    return -1


def _collapse(text: str) -> str:
    return " ".join(text.split())  # what _SPACE.sub(" ", text).strip() gives (the same whitespace), 8x faster


def _html_text(text: str) -> str:
    title = _TITLE.search(text)
    heading = _H1.search(text)
    parts = [p for p in (title and title.group(1), heading and heading.group(1)) if p]
    if parts:
        unique = list(dict.fromkeys(_collapse(_TAG.sub(" ", p)) for p in parts))
        return " - ".join(unique)
    return _collapse(_TAG.sub(" ", text))


def unwrap(code: str | None, message: str | None) -> tuple[str | None, str | None, bool]:
    """(code, message, is_html): the service's own code and message out of whatever wraps them."""
    return _unwrap(code, message, _DISPLAY)[:3]


def _unwrap(code: str | None, message: str | None, display: int) -> tuple[str | None, str | None, bool, str | None]:
    """unwrap, with the message cut at `display` characters, and the unescaped text when it was unescaped."""
    raw = (message or "")[:MAX_TEXT]
    if not raw.strip():
        return (code.strip() or None) if code else None, None, False, None
    lowered = raw.lower()
    if "<html" in lowered or "<!doctype html" in lowered or "<title>" in lowered:
        return (code.strip() or None) if code else None, _html_text(raw)[:display], True, None
    text = _unescape(raw)
    found_code = found_message = None
    folded = text.lower() if text is not raw else lowered
    if "code" in folded and "message" in folded:
        if m := _CODE_MESSAGE_LINES.search(text):
            found_code, found_message = m.group(1), m.group(2)
        else:
            # Nested bodies repeat code/message (a gateway's wrapper around the service's error): the last
            # plain value is the innermost one, i.e. the service's own.
            for cm in _json_codes(text):
                value = cm.group(2) if cm.group(2) is not None else cm.group(3)
                if value and value[0] not in "{[":
                    found_code = value
            for value in _json_messages(text):
                value = value.strip()
                if value and value[0] not in "{[":
                    found_message = value
    if found_code is None and "ErrorCode:" in text and (m := _DOTNET_ERROR_CODE.search(text)):
        found_code = m.group(1)
    parenthesis = "(" in text  # each of the three patterns below needs one
    if found_message is None and parenthesis and (m := _STATUS_PAREN.search(text)):  # "(403) PermissionDenied: ..."
        found_code = found_code or m.group(2)
        found_message = m.group(3) or None
    elif found_message is None and parenthesis and (m := _CODE_PAREN.search(text)):  # "(PermissionDenied) The ..."
        found_code = found_code or m.group(1)
        found_message = m.group(2) or None
    if found_code is None and parenthesis and (m := _STATUS_PAREN_CODE.search(text)):
        found_code = m.group(1)
    if found_code is not None and found_code.strip().lower() in _NO_CODE:
        found_code = None
    final_code = (code.strip() or None) if code else None
    final_code = final_code or (found_code.strip() if found_code else None) or None
    final_message = _collapse(found_message if found_message else text)[:display] or None
    return final_code, final_message, False, text


# ---- classification -----------------------------------------------------------------------------------------

_LOCAL_AUTH_PHRASES = (
    "authenticationtypedisabled",
    "key based authentication is disabled",
    "keybasedauthenticationnotpermitted",
    "local authentication is disabled",
)
_TENANT_PHRASES = (
    "does not match resource tenant",
    "tenant provided in token",
    "invalidauthenticationtokentenant",
    "from the wrong issuer",
)
_NETWORK_PHRASES = (
    "virtual network/firewall",
    "a virtual network is configured",
    "public access is disabled",
    "trafficdenied",
    "firewall rules",
    "not allowed by the network",
    "ip address is not allowed",
)
_AUDIENCE_PHRASES = (
    "invalidauthenticationtokenaudience",
    "invalidaudience",
    "invalid audience",
    "wrong audience",
    "audience is invalid",
    "audience validation failed",
)
_TOKEN_PHRASES = (
    "access token is missing",
    "expiredauthenticationtoken",
    "token is expired",
    "token has expired",
    "token expired",
    "lifetime validation failed",
    "is earlier than current utc time",
    "invalidauthenticationtoken",
    "invalid token",
    "invalid_token",
    "token is not valid",
    "signature validation failed",
)
_MISSING_KEY_PHRASES = (
    "missing subscription key",
    "missing application credentials or subscription key",  # API Management with validate-jwt or a key
    "subscriptionkeynotfound",
    "missing api key",
    "no api key provided",
    "api key not provided",
)
# The OpenAI platform's own key error: an Azure key went to api.openai.com. Checked before the invalid-key phrases.
_WRONG_ENDPOINT_PHRASES = (
    ("platform.openai.com/account/api-keys", "public_openai"),
    ("custom subdomain for token authentication", "regional"),
    ("please provide an authentication key", "regional"),
)
_AADSTS = re.compile(r"aadsts(\d{5,7})")
# Credential-chain failures (azure-identity) that name no AADSTS code, most specific first.
_CREDENTIAL_PHRASES = (
    ("no user assigned or delegated managed identity found", "mi_not_assigned"),
    ("requested identity has not been assigned to this resource", "mi_not_assigned"),
    ("defaultazurecredential failed to retrieve a token", "credential_chain"),
    ("chainedtokencredential failed to retrieve a token", "credential_chain"),
    ("no response from the imds endpoint", "no_managed_identity"),
    ("managedidentitycredential authentication unavailable", "no_managed_identity"),
    ("please run 'az login'", "not_signed_in"),
    ('please run "az login"', "not_signed_in"),
    ("clientsecretcredential authentication failed", "client_secret"),
    ("workloadidentitycredential authentication failed", "workload_identity"),
)
_IDENTITY_OFF_PHRASES = (
    "managedidentityisnotenabled",
    "managed identity (mi) is not set for this account",
    "system assigned managed identity is not enabled",
    "system-assigned managed identity is not enabled",
    "managed identity is not enabled",
)
# A dependency refusing the account's own identity (Azure OpenAI "on your data", Foundry agents' tools).
_DEPENDENCY_ROLE_PHRASES = (
    ("authorizationpermissionmismatch", "storage"),
    ("call to get azure search index failed", "search"),
    ("call to get acs index failed", "search"),
    ("azure search error: 403", "search"),
    ("azure search error: 401", "search"),
)
# A dependency's network rules refusing the account's own call.
_DEPENDENCY_NETWORK_PHRASES = (
    ("forbiddenbyfirewall", "keyvault"),
    ("client address is not authorized and caller is not a trusted service", "keyvault"),
    ("authorizationfailure", "storage"),
)
# The on-your-data message names both causes; only words outside its fixed advice decide between them.
_ON_YOUR_DATA_ADVICE = "if the azure search resource has no public network access, make sure enable trusted service"
_DEPENDENCY_HOST = re.compile(r"([a-z0-9][a-z0-9-]*\.(?:search\.windows\.net|blob\.core\.windows\.net|"
                              r"vault\.azure\.net|dfs\.core\.windows\.net))")
_INVALID_KEY_PHRASES = (
    "invalid subscription key",
    "subscriptionkeyinvalid",
    "invalid api key",
    "incorrect api key",
    "api key is invalid",
)
_PERMISSION_PHRASES = (
    "lacks the required data action",
    "does not have access to api/operation",
    "permissiondenied",
    "does not have permission to perform",
    "does not have permissions for",
)
_CONTROL_PLANE_PHRASES = ("authorizationfailed", "does not have authorization to perform action")
_NOT_FOUND_PHRASES = (
    "deploymentnotfound",
    "api deployment for this resource does not exist",
    "resource not found",
    "operationnotfound",
    "could not be found",
    "model_not_found",
)
# Not access problems, each with its sub-cause (the wording is in shared/core/causes.py).
_BLOCKED_PHRASES = (
    ("temporarily blocked", "abuse_blocked"),
    ("content policy", "abuse_blocked"),
    ("content management policy", "content_filtered"),
    ("content_filter", "content_filtered"),
    ("operationnotsupported", "operation_not_supported"),
    ("does not work with the specified model", "operation_not_supported"),
    ("request header fields too large", "request_headers_too_large"),
    ("api version not supported", "api_version"),
    ("unsupported api version", "api_version"),
    ("enabled only for api versions", "api_version"),
    ("api-version query parameter", "api_version"),
    ("rate limit", "throttled"),
    ("ratelimit", "throttled"),
    ("too many requests", "throttled"),
    ("exceeded token rate", "throttled"),
    ("insufficient_quota", "quota"),
    ("quota exceeded", "quota"),
)
_PHRASES_431 = ("header fields too large", "request header fields too large")
# What is left of an uninformative text once wrappers and these words are removed: nothing.
_FILLER = frozenset(
    "error code status http unauthorized forbidden access denied no body request failed the response "
    "authenticationerror permissiondeniederror apistatuserror with was".split()
)
_WORDS = re.compile(r"[a-z]+")
_DATA_ACTION = re.compile(r"(Microsoft\.CognitiveServices/[\w/.*{}-]+)", re.IGNORECASE)
_ROUTE = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE)\s+(/[^\s`'\"]+)")
_PRINCIPAL = re.compile(r"principal\s+[`'\"]?([^\s`'\"]+)[`'\"]?\s+lacks", re.IGNORECASE)
# Other ways a PermissionDenied names who was refused: "Identity(object id: <guid>)", "object id '<guid>'".
_PRINCIPAL_OBJECT_ID = re.compile(r"object\s*id\s*[:=]?\s*[`'\"]?"
                                  r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", re.IGNORECASE)
_AUDIENCE_LIST = re.compile(r"audience is incorrect\s*\(([^)]*)\)", re.IGNORECASE)
_AUDIENCE_NAMED = re.compile(r"(?:audience|resource)\s+'([^']+)'", re.IGNORECASE)
_TOKEN_TENANT = re.compile(r"token tenant\s+([0-9a-fA-F-]{36}|\S+)", re.IGNORECASE)
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _heads_before_digits(*groups: tuple) -> tuple[str, ...]:
    """What comes before the digits of every phrase that ends in digits after a non-alphanumeric character."""
    heads = set()
    for group in groups:
        for item in group:
            phrase = item[0] if isinstance(item, tuple) else item
            if found := re.fullmatch(r"(.*[^0-9a-z])[0-9a-f]+", phrase):
                heads.add(found.group(1))
    return tuple(sorted(heads))


# text_ids never masks digits after these: a phrase reads them.
PHRASE_HEADS_BEFORE_DIGITS = _heads_before_digits(
    _LOCAL_AUTH_PHRASES, _TENANT_PHRASES, _NETWORK_PHRASES, _AUDIENCE_PHRASES, _TOKEN_PHRASES, _MISSING_KEY_PHRASES,
    _WRONG_ENDPOINT_PHRASES, _CREDENTIAL_PHRASES, _IDENTITY_OFF_PHRASES, _DEPENDENCY_ROLE_PHRASES,
    _DEPENDENCY_NETWORK_PHRASES, _INVALID_KEY_PHRASES, _PERMISSION_PHRASES, _CONTROL_PLANE_PHRASES,
    _NOT_FOUND_PHRASES, _BLOCKED_PHRASES, _PHRASES_431)


# Each list checked through a few guard words (shared/core/phrases.py), with what a test in order would find.
_LOCAL_AUTH = PhraseFamily(_LOCAL_AUTH_PHRASES)
_TENANT_FAMILY = PhraseFamily(_TENANT_PHRASES)
_NETWORK_FAMILY = PhraseFamily(_NETWORK_PHRASES)
_AUDIENCE_FAMILY = PhraseFamily(_AUDIENCE_PHRASES)
_TOKEN_FAMILY = PhraseFamily(_TOKEN_PHRASES)
_MISSING_KEY_FAMILY = PhraseFamily(_MISSING_KEY_PHRASES)
_WRONG_ENDPOINT_FAMILY = PhraseFamily(_WRONG_ENDPOINT_PHRASES)
_CREDENTIAL_FAMILY = PhraseFamily(_CREDENTIAL_PHRASES)
_IDENTITY_OFF_FAMILY = PhraseFamily(_IDENTITY_OFF_PHRASES)
_DEPENDENCY_ROLE_FAMILY = PhraseFamily(_DEPENDENCY_ROLE_PHRASES)
_DEPENDENCY_NETWORK_FAMILY = PhraseFamily(_DEPENDENCY_NETWORK_PHRASES)
_INVALID_KEY_FAMILY = PhraseFamily(_INVALID_KEY_PHRASES)
_PERMISSION_FAMILY = PhraseFamily(_PERMISSION_PHRASES)
_CONTROL_PLANE_FAMILY = PhraseFamily(_CONTROL_PLANE_PHRASES)
_NOT_FOUND_FAMILY = PhraseFamily(_NOT_FOUND_PHRASES)
_BLOCKED_FAMILY = PhraseFamily(_BLOCKED_PHRASES)
_FAMILY_431 = PhraseFamily(_PHRASES_431)
FAMILIES = (_LOCAL_AUTH, _TENANT_FAMILY, _NETWORK_FAMILY, _AUDIENCE_FAMILY, _TOKEN_FAMILY, _MISSING_KEY_FAMILY,
            _WRONG_ENDPOINT_FAMILY, _CREDENTIAL_FAMILY, _IDENTITY_OFF_FAMILY, _DEPENDENCY_ROLE_FAMILY,
            _DEPENDENCY_NETWORK_FAMILY, _INVALID_KEY_FAMILY, _PERMISSION_FAMILY, _CONTROL_PLANE_FAMILY,
            _NOT_FOUND_FAMILY, _BLOCKED_FAMILY, _FAMILY_431)


def _uninformative(low: str) -> bool:
    return all(word in _FILLER for word in _WORDS.findall(low))


@lru_cache(maxsize=8192)
def analyze(status: int, code: str | None, message: str | None) -> TextFacts:
    """Sort one failure text into a kind and pull out the details the engine and humans need."""
    return analyze_uncut(status, code, message, _DISPLAY)


DISPLAY = _DISPLAY  # the length TextFacts.message is cut at


def analyze_uncut(status: int, code: str | None, message: str | None, display: int) -> TextFacts:
    """analyze, with the message cut at `display` characters instead (a masked text is cut after its ids are put
    back: shared.core.text_ids). Not cached."""
    clean_code, clean_message, html, unescaped = _unwrap(code, message, display)
    raw = unescaped if unescaped is not None else _unescape((message or "")[:MAX_TEXT])
    low = f"{clean_code or ''} {raw}".lower()
    details: dict[str, Any] = {"code": clean_code, "message": clean_message, "html": html}

    # Before the HTML pages: a token endpoint's error is often followed by the app's own error page, and a 431 is
    # a proxy's page.
    if facts := _token_acquisition(low, details):
        return facts
    if status == 431 or _FAMILY_431.first(low)[0]:
        return _facts(BLOCKED, True, phrase="request header fields too large", detail="request_headers_too_large",
                         **details)
    if html:
        if status == 403 or "403" in low or "forbidden" in low:
            return _facts(NETWORK, False, phrase="an HTML 403 page from a gateway or firewall", **details)
        return _facts(OTHER, False, phrase="an HTML error page", **details)
    if phrase := _LOCAL_AUTH.first(low)[0]:
        return _facts(LOCAL_AUTH, True, phrase=phrase, **details)
    if phrase := _IDENTITY_OFF_FAMILY.first(low)[0]:
        return _facts(IDENTITY_OFF, True, phrase=phrase, **details)
    if facts := _dependency(low, details):
        return facts
    if phrase := _TENANT_FAMILY.first(low)[0]:
        m = _TOKEN_TENANT.search(raw)
        return _facts(TENANT, True, phrase=phrase, token_tenant=m.group(1) if m else None, **details)
    if phrase := _NETWORK_FAMILY.first(low)[0]:
        return _facts(NETWORK, True, phrase=phrase, **details)
    if facts := _audience_or_token(low, raw, details):
        return facts
    if phrase := _MISSING_KEY_FAMILY.first(low)[0]:
        return _facts(MISSING_KEY, True, phrase=phrase, **details)
    phrase, where = _WRONG_ENDPOINT_FAMILY.first(low)
    if phrase:
        return _facts(WRONG_ENDPOINT, True, phrase=phrase, detail=where, **details)
    if phrase := _INVALID_KEY_FAMILY.first(low)[0]:
        wrong_endpoint = "wrong api endpoint" in low or "regional api endpoint" in low
        return _facts(INVALID_KEY, True, phrase=phrase, wrong_endpoint_possible=wrong_endpoint, **details)
    phrase, subcause = _BLOCKED_FAMILY.first(low)
    if phrase:
        return _facts(BLOCKED, True, phrase=phrase, detail=subcause, **details)
    # openai-python names its 403 exception PermissionDeniedError whatever the body says: not a signal.
    if phrase := _PERMISSION_FAMILY.first(
            low.replace("permissiondeniederror", "") if "permissiondeniederror" in low else low)[0]:
        return _permission(phrase, raw, details)
    if phrase := _CONTROL_PLANE_FAMILY.first(low)[0]:
        return _facts(CONTROL_PLANE, True, phrase=phrase, **details)
    if phrase := _NOT_FOUND_FAMILY.first(low)[0]:
        return _facts(NOT_FOUND, True, phrase=phrase, **details)
    if not raw.strip() or _uninformative(low):
        return _facts(EMPTY, False, **details)
    return _facts(OTHER, False, **details)


def _token_acquisition(low: str, details: dict) -> TextFacts | None:
    """No token was issued: Entra ID answered with an AADSTS error, or the credential chain found nothing."""
    if "aadsts" in low and (m := _AADSTS.search(low)):
        code = f"AADSTS{m.group(1)}"
        return _facts(SIGN_IN, True, phrase=code.lower(), detail=code, **details)
    if "credential" in low or "imds" in low or "az login" in low or "managed identity" in low:
        phrase, problem = _CREDENTIAL_FAMILY.first(low)
        if phrase:
            return _facts(SIGN_IN, True, phrase=phrase, detail=problem, **details)
    return None


def _dependency(low: str, details: dict) -> TextFacts | None:
    """The account's own call to a dependency (Search, Storage, Key Vault) refused: by its roles or its network."""
    phrase, service = _DEPENDENCY_NETWORK_FAMILY.first(low)
    kind = DEPENDENCY_NETWORK
    if phrase and service == "storage" and "using this permission" in low:
        phrase = ""  # Storage's AuthorizationPermissionMismatch: a role, not the network
    if not phrase:
        phrase, service = _DEPENDENCY_ROLE_FAMILY.first(low)
        kind = DEPENDENCY_ROLE
    if not phrase:
        return None
    host = _DEPENDENCY_HOST.search(low)
    # The on-your-data message lists a role and a network cause: only "Authorization failed" from Search is firm.
    strong = service != "search" or "authorization failed" in low.replace(_ON_YOUR_DATA_ADVICE, "")
    return _facts(kind, strong, phrase=phrase, detail=service, dependency_host=host.group(1) if host else None,
                     **details)


def _audience_or_token(low: str, raw: str, details: dict) -> TextFacts | None:
    if phrase := _AUDIENCE_FAMILY.first(low)[0]:
        named = _AUDIENCE_NAMED.search(raw)
        return _facts(AUDIENCE, True, phrase=phrase, audience=named.group(1) if named else None, **details)
    if "audience is incorrect" in low:
        listed = _AUDIENCE_LIST.search(raw)
        audiences = listed.group(1).strip() if listed else ""
        if audiences and _STANDARD_AUDIENCE not in audiences.lower():
            # The endpoint names the audience it wants and it is not the standard one: the caller asked for
            # its token with the standard (or another) scope. Only a changed scope fixes it.
            return _facts(AUDIENCE, True, phrase="audience is incorrect", audience=audiences, **details)
        return _facts(BAD_CREDENTIAL, True, phrase=GENERIC_401_PHRASE, audience=audiences or None, **details)
    if phrase := _TOKEN_FAMILY.first(low)[0]:
        return _facts(BAD_CREDENTIAL, True, phrase=phrase, **details)
    return None


# Runtimes whose calls are made with the project's identity, whoever started them: a PermissionDenied they log
# refuses that identity.
_RUNS_AS_PROJECT = ("azure.ai.agentserver",)


def _permission(phrase: str, raw: str, details: dict) -> TextFacts:
    action = _DATA_ACTION.search(raw)
    route = _ROUTE.search(raw)
    principal = _PRINCIPAL.search(raw) or _PRINCIPAL_OBJECT_ID.search(raw)
    low = raw.lower()
    return _facts(
        PERMISSION,
        True,
        phrase=phrase,
        data_action=action.group(1).rstrip(".`'\"") if action else None,
        route=f"{route.group(1)} {route.group(2)}" if route else None,
        principal=principal.group(1) if principal else None,
        detail="hosted_agent" if any(marker in low for marker in _RUNS_AS_PROJECT) else None,
        **details,
    )


def is_guid(text: str | None) -> bool:
    return text is not None and len(text) == 36 and _GUID.fullmatch(text.lower()) is not None


def is_user_name(text: str | None) -> bool:
    """A UPN the service names (user@domain), not a redaction such as "redacted:email"."""
    return text is not None and "@" in text and not text.lower().startswith("redacted")


def guid_in(text: str | None) -> str | None:
    """The first GUID in a text (lower-cased), e.g. the principal a PermissionDenied names."""
    if not text:
        return None
    m = _GUID.search(text.lower())
    return m.group(0) if m else None
