"""Surface detection and scopes (shared/core/endpoints.py)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core import endpoints
from shared.core.roles import MODELS, OPENAI, PROJECT
from shared.core.surfaces import (
    CONTENT_SAFETY,
    CONTENT_UNDERSTANDING,
    DOCUMENT_INTELLIGENCE,
    FACE,
    LANGUAGE,
    SPEECH,
    TRANSLATOR,
    VISION,
)

ACCOUNT = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/acc"


@pytest.mark.parametrize(
    ("endpoint", "host", "path"),
    [
        ("https://x.openai.azure.com/openai/deployments/d/chat/completions?api-version=1",
         "x.openai.azure.com", "/openai/deployments/d/chat/completions"),
        ("HTTPS://X.Services.AI.Azure.com:443/Models#frag", "x.services.ai.azure.com", "/models"),
        ("x.cognitiveservices.azure.com", "x.cognitiveservices.azure.com", "/"),
        ("/api/projects/p/assistants", "", "/api/projects/p/assistants"),
    ],
)
def test_host_and_path(endpoint, host, path):
    assert endpoints.host_and_path(endpoint) == (host, path)


@pytest.mark.parametrize(
    ("endpoint", "route", "operation", "surface", "source"),
    [
        ("https://x.openai.azure.com/openai/deployments/d/chat/completions", None, None, OPENAI, "endpoint path"),
        ("https://x.services.ai.azure.com/openai/deployments/d/embeddings", None, None, OPENAI, "endpoint path"),
        ("https://x.services.ai.azure.com/models/chat/completions", None, None, MODELS, "endpoint path"),
        ("https://x.services.ai.azure.com/api/projects/p/assistants", None, None, PROJECT, "endpoint path"),
        # the project's OpenAI-compatible API is still the project surface
        ("https://x.services.ai.azure.com/api/projects/p/openai/v1/responses", None, None, PROJECT, "endpoint path"),
        # a gateway in front of Azure OpenAI keeps the /openai/deployments path
        ("https://apim.azure-api.net/gw/openai/deployments/d/chat/completions", None, None, OPENAI, "endpoint path"),
        (None, "Azure OpenAI API version 2024-02-15-preview", None, OPENAI, "api name"),
        (None, "/models/chat/completions", None, MODELS, "route"),
        (None, None, "ChatCompletions_Create", OPENAI, "operation name"),
        (None, None, "Create_Thread", OPENAI, "operation name"),
        ("https://x.openai.azure.com", None, None, OPENAI, "endpoint host"),
        ("https://x.services.ai.azure.com", None, None, None, ""),
        # every AI Services surface (issue 12; Form Recognizer had none before)
        ("https://x.cognitiveservices.azure.com/formrecognizer/v2.0/layout", None, None, DOCUMENT_INTELLIGENCE,
         "endpoint path"),
        ("https://x.cognitiveservices.azure.com/documentintelligence/documentModels/prebuilt-read:analyze", None,
         None, DOCUMENT_INTELLIGENCE, "endpoint path"),
        ("https://x.services.ai.azure.com/contentunderstanding/analyzers/a:analyze", None, None,
         CONTENT_UNDERSTANDING, "endpoint path"),
        ("https://x.cognitiveservices.azure.com/speechtotext/v3.2/transcriptions", None, None, SPEECH,
         "endpoint path"),
        ("https://westeurope.stt.speech.microsoft.com", None, None, SPEECH, "endpoint host"),
        ("https://westeurope.tts.speech.microsoft.com/cognitiveservices/v1", None, None, SPEECH, "endpoint path"),
        ("https://x.cognitiveservices.azure.com/computervision/imageanalysis:analyze", None, None, VISION,
         "endpoint path"),
        ("https://x.cognitiveservices.azure.com/face/v1.0/detect", None, None, FACE, "endpoint path"),
        ("https://x.cognitiveservices.azure.com/language/:analyze-text", None, None, LANGUAGE, "endpoint path"),
        ("https://x.cognitiveservices.azure.com/text/analytics/v3.1/sentiment", None, None, LANGUAGE,
         "endpoint path"),
        ("https://x.cognitiveservices.azure.com/translator/text/v3.0/translate", None, None, TRANSLATOR,
         "endpoint path"),
        ("https://api.cognitive.microsofttranslator.com", None, None, TRANSLATOR, "endpoint host"),
        ("https://x.cognitiveservices.azure.com/contentsafety/text:analyze", None, None, CONTENT_SAFETY,
         "endpoint path"),
        (None, "Speech to text API", None, SPEECH, "api name"),
        ("https://x.cognitiveservices.azure.com/anomalydetector/v1.0/timeseries", None, None, None, ""),
        (None, None, "ListKey", None, ""),
    ],
)
def test_detect_surface(endpoint, route, operation, surface, source):
    found, _, where = endpoints.detect(endpoint, route, operation)
    assert (found, where) == (surface, source)


def test_hints_from_the_error_text_come_after_the_call_itself():
    action = "Microsoft.CognitiveServices/accounts/AIServices/agents/read"
    assert endpoints.detect(None, None, None, action)[0] == PROJECT
    assert endpoints.detect(None, None, None, "Microsoft.CognitiveServices/accounts/MaaS/x")[0] == MODELS
    assert endpoints.detect(None, None, None, None, "/api/projects/{projectName}/threads")[0] == PROJECT
    # the URL says /openai: it beats a data action hint
    assert endpoints.detect("https://x.openai.azure.com/openai/x", None, None, action)[0] == OPENAI


@pytest.mark.parametrize(
    ("path", "project"),
    [
        ("/api/projects/proj-a/assistants", "proj-a"),
        ("/API/Projects/Proj-A", "Proj-A"),
        ("/api/projects/{projectName}/assistants", None),
        ("/api/projects/", None),
        ("/openai/deployments/d", None),
    ],
)
def test_project_from_path(path, project):
    assert endpoints.project_from_path(path) == project


def test_detect_returns_the_project_named_in_the_url_or_route():
    assert endpoints.detect("https://x.services.ai.azure.com/api/projects/p1/threads", None, None)[1] == "p1"
    assert endpoints.detect(None, "/api/projects/p2/assistants", None)[1] == "p2"


def test_account_and_project_ids():
    project_id = f"{ACCOUNT}/projects/p"
    assert endpoints.account_id_of(project_id) == ACCOUNT
    assert endpoints.account_id_of(ACCOUNT + "/") == ACCOUNT
    assert endpoints.project_of_resource(project_id) == "p"
    assert endpoints.project_of_resource(ACCOUNT) is None
    assert endpoints.project_scope(ACCOUNT, "p") == project_id
    assert endpoints.project_scope(project_id, "q") == f"{ACCOUNT}/projects/q"


@pytest.mark.parametrize(
    ("held", "target", "applies"),
    [
        (ACCOUNT, ACCOUNT, True),
        (ACCOUNT.upper(), ACCOUNT.lower() + "/", True),
        ("/subscriptions/s1", ACCOUNT, True),
        ("/subscriptions/s1/resourceGroups/rg", f"{ACCOUNT}/projects/p", True),
        ("/", ACCOUNT, True),
        ("", ACCOUNT, False),
        (f"{ACCOUNT}/projects/p", ACCOUNT, False),  # a project assignment does not reach the account
        (ACCOUNT + "2", ACCOUNT + "2/projects/p", True),
        (ACCOUNT, ACCOUNT + "2", False),  # a sibling whose name extends ours is not a child
        ("/subscriptions/s2", ACCOUNT, False),
    ],
)
def test_covers(held, target, applies):
    assert endpoints.covers(held, target) is applies


_SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)


@given(st.lists(_SEGMENT, min_size=1, max_size=6), st.lists(_SEGMENT, min_size=0, max_size=4))
def test_an_ancestor_covers_every_descendant_whatever_the_case(parent_parts, child_parts):
    parent = "/" + "/".join(parent_parts)
    child = parent + "".join("/" + p for p in child_parts)
    assert endpoints.covers(parent.upper(), child)
    if child_parts:
        assert not endpoints.covers(child, parent)
