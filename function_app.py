"""Azure Functions entry points (Python v2 programming model). Thin: parse input, call `shared`, return.

Heavy Azure SDK modules are imported inside the handlers, never here: this module is on the cold-start path.
"""

import json

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def _json_response(body: dict, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json")


@app.function_name(name="health")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    from shared.health import check_health

    report = check_health()
    return _json_response(report, 200 if report["ok"] else 503)
