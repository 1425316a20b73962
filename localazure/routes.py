"""Data-plane routes of Azure OpenAI / Foundry: which surface a path belongs to, the data action it needs,
and the OperationName the diagnostic log records for it."""

from __future__ import annotations

import re
from dataclasses import dataclass

OPENAI = "openai"  # /openai/...            -> Microsoft.CognitiveServices/accounts/OpenAI/*
MODELS = "models"  # /models/...            -> Microsoft.CognitiveServices/accounts/MaaS/*
PROJECT = "project"  # /api/projects/{p}/... -> Microsoft.CognitiveServices/accounts/AIServices/*
OTHER = "other"

_DA = "Microsoft.CognitiveServices/accounts"


@dataclass(frozen=True)
class RouteInfo:
    surface: str
    data_action: str
    operation: str  # log OperationName, e.g. ChatCompletions_Create
    template: str  # the path as the PermissionDenied message spells it, e.g. /openai/deployments/{deployment-id}/...
    deployment: str | None = None
    project: str | None = None
    api_name: str = ""


_OPENAI_DEPLOYMENT_OPS = {
    "chat/completions": ("deployments/chat/completions/action", "ChatCompletions_Create"),
    "completions": ("deployments/completions/action", "Completions_Create"),
    "embeddings": ("deployments/embeddings/action", "Embeddings_Create"),
    "extensions/chat/completions": ("deployments/extensions/chat/completions/action", "ChatCompletions_Create"),
    "images/generations": ("images/generations/action", "ImageGenerations_Create"),
    "audio/transcriptions": ("deployments/audio/action", "AudioTranscriptions_Create"),
    "audio/translations": ("deployments/audio/action", "AudioTranslations_Create"),
    "audio/speech": ("deployments/audio/action", "AudioSpeech_Create"),
    "realtime": ("deployments/realtime/action", "Realtime_Create"),
}
_OPENAI_V1_OPS = {
    "chat/completions": ("deployments/chat/completions/action", "ChatCompletions_Create"),
    "embeddings": ("deployments/embeddings/action", "Embeddings_Create"),
    "responses": ("responses/write", "Responses_Create"),
    "completions": ("deployments/completions/action", "Completions_Create"),
}
_MODELS_OPS = {
    "chat/completions": ("chat/completions/action", "ChatCompletions_Create"),
    "embeddings": ("embeddings/action", "Embeddings_Create"),
    "images/embeddings": ("images/embeddings/action", "ImageEmbeddings_Create"),
    "info": ("models/read", "Models_Info"),
}


def _camel(segment: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]", segment) if part)


def _generic(surface_prefix: str, rest: str, method: str) -> tuple[str, str]:
    first = rest.strip("/").split("/", 1)[0] or "root"
    verb = "read" if method in ("GET", "HEAD") else "delete" if method == "DELETE" else "write"
    op = f"{_camel(first)}_{'Get' if verb == 'read' else 'Delete' if verb == 'delete' else 'Create'}"
    return f"{surface_prefix}/{first}/{verb}", op


def classify(method: str, path: str, *, deployment: str | None = None, api_version: str = "") -> RouteInfo:
    """Describe a data-plane request. `deployment` names the model for routes that carry it in the body."""
    method = method.upper()
    clean = "/" + path.split("?", 1)[0].strip("/")
    openai_api = f"Azure OpenAI API version {api_version}".strip()

    m = re.fullmatch(r"/openai/deployments/([^/]+)/(.+)", clean, re.IGNORECASE)
    if m:
        dep, rest = m.group(1), m.group(2).lower()
        action, op = _OPENAI_DEPLOYMENT_OPS.get(rest) or _generic("deployments", rest, method)
        return RouteInfo(OPENAI, f"{_DA}/OpenAI/{action}", op, f"/openai/deployments/{{deployment-id}}/{rest}",
                         deployment=dep, api_name=openai_api)
    m = re.fullmatch(r"/openai/v1/(.+)", clean, re.IGNORECASE)
    if m:
        rest = m.group(1).lower()
        action, op = _OPENAI_V1_OPS.get(rest) or _generic("v1", rest, method)
        return RouteInfo(OPENAI, f"{_DA}/OpenAI/{action}", op, f"/openai/v1/{rest}", deployment=deployment,
                         api_name="Azure OpenAI API v1")
    m = re.fullmatch(r"/openai(?:/(.*))?", clean, re.IGNORECASE)
    if m:
        rest = (m.group(1) or "").lower()
        action, op = _generic("", rest, method)
        return RouteInfo(OPENAI, f"{_DA}/OpenAI{action}", op, f"/openai/{rest}", deployment=deployment,
                         api_name=openai_api)
    m = re.fullmatch(r"/models(?:/(.*))?", clean, re.IGNORECASE)
    if m:
        rest = (m.group(1) or "").lower()
        action, op = _MODELS_OPS.get(rest) or _generic("", rest, method)
        return RouteInfo(MODELS, f"{_DA}/MaaS/{action.lstrip('/')}", op, f"/models/{rest}".rstrip("/"),
                         deployment=deployment, api_name="Azure AI Model Inference API")
    m = re.fullmatch(r"/api/projects/([^/]+)(?:/(.*))?", clean, re.IGNORECASE)
    if m:
        project, rest = m.group(1), (m.group(2) or "").lower()
        first = rest.split("/", 1)[0]
        if first in ("assistants", "agents", "threads", "runs"):
            verb = "read" if method in ("GET", "HEAD") else "delete" if method == "DELETE" else "write"
            action = f"agents/{verb}"
            op = f"{_camel(first)}_{'List' if verb == 'read' else 'Delete' if verb == 'delete' else 'Create'}"
        else:
            action, op = _generic("", rest, method)
            action = action.lstrip("/")
        return RouteInfo(PROJECT, f"{_DA}/AIServices/{action}", op, f"/api/projects/{{projectName}}/{rest}",
                         deployment=deployment, project=project, api_name="Azure AI Foundry Projects API")
    action, op = _generic("", clean, method)
    return RouteInfo(OTHER, f"{_DA}{action}", op, clean, deployment=deployment, api_name="")
