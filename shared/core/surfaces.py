"""The data-plane surfaces of an AI Services account: one per route family, with the data action a call to it needs
and the least-privilege built-in role that grants it (a GUID of the role catalogue, `shared/core/roles.py`).

A surface's `data_action` is the one its typical call needs (a chat completion, an agent write, a document analysis,
...); an error text that names the exact data action refines it. Where Microsoft does not publish the exact action
(Content Understanding, Translator) it is the namespace, `<namespace>/*`, which only a role granting the whole
namespace covers. Roles are judged against the data action, so the catalogue's definitions decide which role covers
which surface, never a hand list. Where no narrower built-in exists, the least-privilege role is Cognitive Services
User (its data actions are `Microsoft.CognitiveServices/*`: the fix says so); Speech, Face and Language have
narrower built-ins, which the service does not grant itself (they are ticketed with the command).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

_CS = "Microsoft.CognitiveServices/accounts"


@dataclass(frozen=True)
class Surface:
    id: str
    label: str  # how sentences name it
    routes: str  # the calls that reach it (docs)
    namespaces: tuple[str, ...]  # data actions under these prefixes belong to the surface (lower-case)
    data_action: str  # what its typical call needs; `<namespace>/*` where the exact action is not published
    least_privilege: str  # GUID of the least-privilege built-in role that grants `data_action`


OPENAI = "openai"  # /openai/... : Microsoft.CognitiveServices/accounts/OpenAI/*
MODELS = "models"  # /models/... (Foundry Models inference): accounts/MaaS/*
PROJECT = "project"  # /api/projects/{p}/... : accounts/AIServices/*
DOCUMENT_INTELLIGENCE = "document_intelligence"
CONTENT_UNDERSTANDING = "content_understanding"
SPEECH = "speech"
VISION = "vision"
FACE = "face"
LANGUAGE = "language"
TRANSLATOR = "translator"
CONTENT_SAFETY = "content_safety"

_OPENAI_USER = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
_CS_USER = "a97b65f3-24c7-4388-baec-2e87135dc908"
_FOUNDRY_USER = "53ca6127-db72-4b80-b1b0-d745d6d5456d"
_SPEECH_USER = "f2dc8367-1007-4938-bd23-fe263f013447"
_FACE_RECOGNIZER = "9894cab4-e18a-44aa-828b-cb588cd6f2d7"
_LANGUAGE_READER = "7628b7b8-a8b2-4cdc-b46f-e9b35248918e"


def _ns(*names: str) -> tuple[str, ...]:
    return tuple(f"{_CS}/{name}/".lower() for name in names)


SURFACES: dict[str, Surface] = {
    s.id: s
    for s in (
        Surface(OPENAI, "Azure OpenAI (/openai/...)", "`/openai/...` on an OpenAI or AIServices account",
                _ns("OpenAI"), f"{_CS}/OpenAI/deployments/chat/completions/action", _OPENAI_USER),
        Surface(MODELS, "Foundry Models inference (/models)", "`/models...` (Foundry Models inference)",
                _ns("MaaS"), f"{_CS}/MaaS/chat/completions/action", _CS_USER),
        Surface(PROJECT, "the Foundry project API (/api/projects/...)",
                "`/api/projects/{p}/...` (projects and agents, including `/api/projects/{p}/openai/...`)",
                _ns("AIServices"), f"{_CS}/AIServices/agents/write", _FOUNDRY_USER),
        Surface(DOCUMENT_INTELLIGENCE, "Document Intelligence (/documentintelligence, /formrecognizer)",
                "`/documentintelligence/...`, `/formrecognizer/...`", _ns("FormRecognizer"),
                f"{_CS}/FormRecognizer/documentmodels:analyze/action", _CS_USER),
        Surface(CONTENT_UNDERSTANDING, "Content Understanding (/contentunderstanding)", "`/contentunderstanding/...`",
                _ns("ContentUnderstanding"), f"{_CS}/ContentUnderstanding/*", _CS_USER),
        Surface(SPEECH, "Speech (speech-to-text, text-to-speech)",
                "`/speechtotext/...`, `/stt/...`, `/tts/...`, `/cognitiveservices/v1`, "
                "`*.stt.speech.microsoft.com`, `*.tts.speech.microsoft.com`",
                _ns("SpeechServices", "CustomVoice", "BatchTextToSpeech"),
                f"{_CS}/SpeechServices/speechrest/transcriptions/action", _SPEECH_USER),
        Surface(VISION, "Vision (/computervision, /vision)", "`/computervision/...`, `/vision/...`",
                _ns("ComputerVision", "CustomVision"), f"{_CS}/ComputerVision/imageanalysis:analyze/action",
                _CS_USER),
        Surface(FACE, "Face (/face)", "`/face/...`", _ns("Face"), f"{_CS}/Face/detect/action", _FACE_RECOGNIZER),
        Surface(LANGUAGE, "Language (/language, /text/analytics)", "`/language/...`, `/text/analytics/...`",
                _ns("Language", "TextAnalytics", "LanguageAuthoring", "ConversationalLanguageUnderstanding"),
                f"{_CS}/Language/analyze-text/action", _LANGUAGE_READER),
        Surface(TRANSLATOR, "Translator (/translator, /translate)",
                "`/translator/...`, `/translate`, `api.cognitive.microsofttranslator.com`", _ns("TextTranslation"),
                f"{_CS}/TextTranslation/*", _CS_USER),
        Surface(CONTENT_SAFETY, "Content Safety (/contentsafety)", "`/contentsafety/...`", _ns("ContentSafety"),
                f"{_CS}/ContentSafety/text:analyze/action", _CS_USER),
    )
}
ALL_SURFACES: frozenset[str] = frozenset(SURFACES)


@lru_cache(maxsize=1024)
def of_data_action(data_action: str) -> str | None:
    """The surface a data action belongs to (`Microsoft.CognitiveServices/accounts/<namespace>/...`)."""
    lowered = data_action.lower()
    for surface in SURFACES.values():
        if lowered.startswith(surface.namespaces):
            return surface.id
    return None
