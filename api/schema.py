"""The OpenAPI schema's shared parts: every operation may answer with a problem (RFC 9457), and says so."""

PROBLEM_RESPONSES = {
    "400": "Bad input: the problem's `errors` list the fields.",
    "401": "No token, or one that is not valid, expired or revoked.",
    "403": "The token's scopes or the user's roles do not allow this.",
    "404": "Not found, or not yours to see.",
    "406": "The response cannot be given in a format the request accepts.",
    "409": "Refused by the trial's rules (the family's state, the allocation list).",
    "415": "The request's body is not JSON.",
    "429": "Too many calls with this token: wait Retry-After seconds.",
}
SAFE_CODES = ("401", "403", "404", "406", "429")


def add_problem_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: the Problem component, and the problem responses on every operation."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = {
        "type": "object",
        "description": "A problem detail (RFC 9457).",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}, "detail": {"type": "string"}},
                    "required": ["field", "detail"],
                },
            },
        },
        "required": ["type", "title", "status", "detail"],
    }
    reference = {"$ref": "#/components/schemas/Problem"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            codes = SAFE_CODES if method in ("get", "head") else tuple(PROBLEM_RESPONSES)
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(
                    code,
                    {
                        "description": PROBLEM_RESPONSES[code],
                        "content": {"application/problem+json": {"schema": reference}},
                    },
                )
    return result
