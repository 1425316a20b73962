"""Which data-plane surface a failed call hit, and the narrowest scope for it. Pure string work, cached.

Surfaces (see surfaces.py): `openai` for `/openai/...`, `models` for Foundry Models inference (`/models...`),
`project` for `/api/projects/{p}/...` (including the project's OpenAI-compatible `/api/projects/{p}/openai/...`),
and the other AI Services: Document Intelligence, Content Understanding, Speech, Vision, Face, Language, Translator,
Content Safety, by their route prefixes (and Speech's and Translator's own hosts).
A surface is read from, in order: the endpoint URL path, a route that is a path, then hints found in the error
text (its data action or `METHOD /path`), then what a log row says (a route that is an `apiName`, the log
`OperationName`). A bare host is the weakest hint: `*.openai.azure.com` serves only `/openai/...`. The error text
comes before the row because it names the exact data action; the row's names are the same for several surfaces
on a Foundry (AIServices) account, so `row_hint` tells the diagnosis which answers came from the row alone.
"""

from __future__ import annotations

from functools import lru_cache

from shared.core import resource_ids
from shared.core.surfaces import (
    CONTENT_SAFETY,
    CONTENT_UNDERSTANDING,
    DOCUMENT_INTELLIGENCE,
    FACE,
    LANGUAGE,
    MODELS,
    OPENAI,
    PROJECT,
    SPEECH,
    TRANSLATOR,
    VISION,
    of_data_action,
)

OPENAI_HOST_SUFFIX = ".openai.azure.com"
FOUNDRY_HOST_SUFFIX = ".services.ai.azure.com"
COGNITIVE_HOST_SUFFIX = ".cognitiveservices.azure.com"

_PROJECTS_SEGMENT = "/api/projects/"
_PROJECT_PLACEHOLDERS = frozenset({"{projectname}", "{project}", "{project_name}", "<project>", "*"})

# Route prefixes of the other AI Services (first path segment, lower-case).
_SERVICE_PREFIXES = {
    "documentintelligence": DOCUMENT_INTELLIGENCE,
    "formrecognizer": DOCUMENT_INTELLIGENCE,
    "contentunderstanding": CONTENT_UNDERSTANDING,
    "speechtotext": SPEECH,
    "speech": SPEECH,
    "stt": SPEECH,
    "tts": SPEECH,
    "cognitiveservices": SPEECH,  # text-to-speech REST: /cognitiveservices/v1, /cognitiveservices/voices/list
    "computervision": VISION,
    "vision": VISION,
    "customvision": VISION,
    "face": FACE,
    "language": LANGUAGE,
    "text": LANGUAGE,  # /text/analytics/v3.x (Text Analytics, now Language)
    "translator": TRANSLATOR,
    "translate": TRANSLATOR,
    "contentsafety": CONTENT_SAFETY,
}
# A log row's apiName words of the other services (their apiName values are not documented: a best effort).
_API_NAME_WORDS = (
    ("form recognizer", DOCUMENT_INTELLIGENCE), ("document intelligence", DOCUMENT_INTELLIGENCE),
    ("content understanding", CONTENT_UNDERSTANDING), ("speech", SPEECH), ("computer vision", VISION),
    ("image analysis", VISION), ("face", FACE), ("text analytics", LANGUAGE), ("language", LANGUAGE),
    ("translator", TRANSLATOR), ("translation", TRANSLATOR), ("content safety", CONTENT_SAFETY),
)
_SERVICE_HOSTS = ((".stt.speech.microsoft.com", SPEECH), (".tts.speech.microsoft.com", SPEECH),
                  (".speech.microsoft.com", SPEECH), ("api.cognitive.microsofttranslator.com", TRANSLATOR))
# Account kinds that serve one surface (a multi-service CognitiveServices or AIServices account serves them all).
KIND_SURFACES = {"openai": OPENAI, "formrecognizer": DOCUMENT_INTELLIGENCE, "speechservices": SPEECH,
                 "computervision": VISION, "customvision.prediction": VISION, "face": FACE,
                 "textanalytics": LANGUAGE, "language": LANGUAGE, "texttranslation": TRANSLATOR,
                 "contentsafety": CONTENT_SAFETY}

# AzureDiagnostics OperationName prefixes of the Azure OpenAI data plane (classic and Assistants APIs).
_OPENAI_OPERATION_WORDS = (
    "chatcompletions",
    "completions",
    "embeddings",
    "imagegenerations",
    "audio",
    "assistant",
    "thread",
    "run",
    "file",
    "batch",
    "finetun",
    "fine_tun",
    "realtime",
    "response",
    "vectorstore",
    "vector_store",
    "deployment",
    "extensions",
)
_MODELS_OPERATION_WORDS = ("maas", "modelinference", "model_inference", "models_")


def host_and_path(endpoint: str) -> tuple[str, str]:
    """Lower-cased host and path (query and fragment dropped) of a URL, or of a bare host / bare path."""
    text = endpoint.strip()
    scheme_end = text.find("://")
    if scheme_end >= 0:
        text = text[scheme_end + 3 :]
    elif text.startswith("/"):
        return "", _clean_path(text)
    slash = text.find("/")
    host, path = (text, "/") if slash < 0 else (text[:slash], text[slash:])
    host = host.rsplit("@", 1)[-1].split(":", 1)[0].lower()
    return host, _clean_path(path)


def _clean_path(path: str) -> str:
    for mark in ("?", "#"):
        cut = path.find(mark)
        if cut >= 0:
            path = path[:cut]
    return path.lower() or "/"


def surface_of_path(path: str) -> str | None:
    if not path:
        return None
    lowered = path.lower()
    if _PROJECTS_SEGMENT in lowered or lowered.startswith("api/projects/"):
        return PROJECT
    if lowered.startswith("/openai/") or lowered == "/openai" or lowered.startswith("openai/"):
        return OPENAI
    if lowered.startswith("/models") or lowered.startswith("models/") or lowered == "models":
        return MODELS
    if "/openai/deployments/" in lowered:  # a gateway prefix in front of the Azure OpenAI path
        return OPENAI
    first = lowered.lstrip("/").split("/", 1)[0]
    return _SERVICE_PREFIXES.get(first)


def surface_of_host(host: str) -> str | None:
    # *.openai.azure.com serves only /openai; Speech and Translator have hosts of their own. AIServices and
    # cognitiveservices hosts serve every surface, so the path decides there.
    if host.endswith(OPENAI_HOST_SUFFIX):
        return OPENAI
    return next((surface for suffix, surface in _SERVICE_HOSTS if host.endswith(suffix)), None)


_REGIONAL_SUFFIX = ".api.cognitive.microsoft.com"
_ML_SUFFIXES = (".inference.ml.azure.com", ".inference.ai.azure.com")


@lru_cache(maxsize=4096)
def wrong_service(endpoint: str | None, auth: str | None) -> str | None:
    """Why an endpoint is not the resource's own, when its host says so (a key of causes.WRONG_ENDPOINTS): the
    public OpenAI API, a regional endpoint given a token (it takes keys only), an Azure ML host for /openai calls."""
    if not endpoint:
        return None
    host, path = host_and_path(endpoint)
    if host == "api.openai.com":
        return "public_openai"
    if host.endswith(_REGIONAL_SUFFIX) and auth == "entra":
        return "regional"
    if host.endswith(_ML_SUFFIXES) and surface_of_path(path) == OPENAI:
        return "azure_ml"
    return None


def is_inference_host(host: str) -> bool:
    return host.endswith((OPENAI_HOST_SUFFIX, FOUNDRY_HOST_SUFFIX, COGNITIVE_HOST_SUFFIX))


def surface_of_route(route: str) -> str | None:
    """A URL path, or a log `apiName` such as "Azure OpenAI API version 2024-02-15-preview"."""
    text = route.strip()
    if not text:
        return None
    if "/" in text:
        return surface_of_path(host_and_path(text)[1] if "://" in text else text)
    lowered = text.lower()
    if "openai" in lowered:
        return OPENAI
    if "model inference" in lowered or "models" in lowered or "maas" in lowered:
        return MODELS
    if "agent" in lowered or "project" in lowered:
        return PROJECT
    return next((surface for word, surface in _API_NAME_WORDS if word in lowered), None)


def surface_of_operation(operation: str) -> str | None:
    """A log `OperationName` such as `ChatCompletions_Create` or `Create_Thread`."""
    lowered = operation.strip().lower()
    if not lowered:
        return None
    if any(word in lowered for word in _MODELS_OPERATION_WORDS):
        return MODELS
    if any(word in lowered for word in _OPENAI_OPERATION_WORDS):
        return OPENAI
    return None


def surface_of_data_action(data_action: str) -> str | None:
    return of_data_action(data_action)


def project_from_path(path: str) -> str | None:
    """`p` from `/api/projects/p/...`; None for placeholders such as `{projectName}`."""
    lowered = path.lower()
    at = lowered.find(_PROJECTS_SEGMENT)
    if at < 0:
        return None
    rest = path[at + len(_PROJECTS_SEGMENT) :]
    name = rest.split("/", 1)[0].strip()
    if not name or name.lower() in _PROJECT_PLACEHOLDERS:
        return None
    return name


# Where a surface came from (the third value of `detect`); the last two are the row's own names.
ENDPOINT_PATH = "endpoint path"
ROUTE = "route"
TEXT_DATA_ACTION = "data action in the error"
TEXT_OPERATION = "operation in the error"
ROW_API_NAME = "api name"
ROW_OPERATION = "operation name"
ENDPOINT_HOST = "endpoint host"
ROW_HINTS = frozenset({ROW_API_NAME, ROW_OPERATION})


@lru_cache(maxsize=4096)
def detect(
    endpoint: str | None,
    route: str | None,
    operation: str | None,
    hint_data_action: str | None = None,
    hint_route: str | None = None,
) -> tuple[str | None, str | None, str]:
    """(surface, project name, where the surface came from). Arguments are the signal's fields and the hints
    the message analysis found; any may be None."""
    host, path = host_and_path(endpoint) if endpoint else ("", "")
    project = project_from_path(path) if path else None
    route_path = route if route and "/" in route else None
    if route_path and project is None:
        project = project_from_path(route_path)
    surface = surface_of_path(path) if path not in ("", "/") else None
    if surface:
        return surface, project, ENDPOINT_PATH
    if route_path and (surface := surface_of_route(route_path)):
        return surface, project, ROUTE
    if hint_data_action and (surface := surface_of_data_action(hint_data_action)):
        return surface, project, TEXT_DATA_ACTION
    if hint_route and (surface := surface_of_path(hint_route)):
        return surface, project, TEXT_OPERATION
    surface, where = row_hint(route, operation)
    if surface:
        return surface, project, where
    if host and (surface := surface_of_host(host)):
        return surface, project, ENDPOINT_HOST
    return None, project, ""


@lru_cache(maxsize=4096)
def row_hint(route: str | None, operation: str | None) -> tuple[str | None, str]:
    """The surface a log row's own names suggest (its `apiName`, then its `OperationName`), and which one said it."""
    if route and "/" not in route and (surface := surface_of_route(route)):
        return surface, ROW_API_NAME
    if operation and (surface := surface_of_operation(operation)):
        return surface, ROW_OPERATION
    return None, ""


# ---- scopes (the ids themselves are read by shared.core.resource_ids) ----------------------------------------


def account_id_of(resource_id: str) -> str:
    """The account part of an account or project resource id, keeping the caller's casing."""
    parsed = resource_ids.parse(resource_id)
    return parsed.account().text if parsed is not None else resource_id.strip().rstrip("/")


def project_of_resource(resource_id: str) -> str | None:
    """The project name when `resource_id` is a Foundry project id (`.../accounts/a/projects/p`)."""
    return resource_ids.project_name(resource_id)


def project_scope(account_id: str, project: str) -> str:
    return f"{account_id_of(account_id)}/projects/{project}"


_scope_key = lru_cache(maxsize=8192)(resource_ids.normalize_scope)  # case-insensitive, slash-normalized ARM id


def covers(assignment_scope: str, target_scope: str) -> bool:
    """True when an assignment at `assignment_scope` applies at `target_scope` (equal or an ancestor)."""
    if not assignment_scope.strip():
        return False  # no scope is no scope, not the root "/"
    held = _scope_key(assignment_scope)
    return held == "/" or resource_ids.scope_within(_scope_key(target_scope), held)
