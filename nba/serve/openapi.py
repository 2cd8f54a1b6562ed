"""The service's OpenAPI schemas, generated: the customer from `nba.data.schema` (the rules
themselves stay in the validator), a decision from the columns the scoring path returns."""

from __future__ import annotations

from typing import Any

import numpy as np

from nba.data import schema
from nba.serve.decisions import MAX_BODY_BYTES, MAX_CUSTOMERS

_WHOLE = frozenset((schema.ID, *schema.INTEGERS))


def _number(name: str) -> dict[str, Any]:
    lo, hi = schema.BOUNDS[name]
    whole = name in _WHOLE
    return {
        "type": "integer" if whole else "number",
        "minimum": int(lo) if whole else lo,
        "maximum": int(hi) if whole else hi,
    }


def customer_schema() -> dict[str, Any]:
    """One BankChurners customer record as JSON Schema, from the project's schema constants
    (types, bounds, categories, required fields). Documentation only: requests are checked by
    `nba.data.validate`, whose sentences come back in `rejected`."""
    props: dict[str, Any] = {}
    for name in schema.REQUIRED:
        if name in schema.CATEGORIES:
            props[name] = {"type": "string", "enum": list(schema.CATEGORIES[name])}
        else:
            props[name] = _number(name)
    props[schema.ID]["description"] = "the customer's id, unique within a request"
    props["Avg_Open_To_Buy"]["description"] = (
        f"Credit_Limit − Total_Revolving_Bal (tolerance {schema.OPEN_TO_BUY_TOLERANCE:g})"
    )
    props["Avg_Utilization_Ratio"]["description"] = (
        f"Total_Revolving_Bal / Credit_Limit (tolerance {schema.UTILIZATION_TOLERANCE:g})"
    )
    return {
        "type": "object",
        "description": (
            "A customer in the BankChurners format. Numbers may also be sent as numeric text; "
            "categories match case-insensitively. Other fields (Attrition_Flag, the "
            "Naive_Bayes columns, anything else) are ignored."
        ),
        "properties": props,
        "required": list(schema.REQUIRED),
        "additionalProperties": True,
    }


def _json_type(values: Any) -> dict[str, Any]:
    if isinstance(values, np.ndarray) and values.dtype.kind in "iub":
        return {"type": "integer"}
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return {"type": ["number", "null"]}  # NaN (no such action) is written as null
    return {"type": "string"}


def decision_schema(columns: dict[str, Any]) -> dict[str, Any]:
    """A decision: the score columns the scoring path returned (named and typed from a real
    scoring call) and what the service adds."""
    props = {name: _json_type(values) for name, values in columns.items()}
    props.update(
        {
            "index": {"type": "integer", "description": "the customer's position in the request"},
            "decision_id": {"type": "string", "description": "quote it in /v1/responses"},
            "bundle_id": {"type": "string", "description": "the bundle that decided"},
            "variant": {"type": "string", "enum": ["champion", "challenger"]},
        }
    )
    return {
        "type": "object",
        "description": "The `nba score` row of the customer (equal values) and the decision's ids.",
        "properties": props,
        "required": list(props),
    }


_REJECTED = {
    "type": "object",
    "properties": {
        "index": {"type": "integer", "description": "position in the request's list"},
        "reason": {
            "type": "string",
            "description": "the validator's sentence (rows in reasons count customers from 1)",
        },
    },
    "required": ["index", "reason"],
}

_ERROR = {
    "type": "object",
    "properties": {"detail": {"type": "string", "description": "one sentence: what is wrong"}},
    "required": ["detail"],
}


def components(decision_columns: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    """Every schema the paths refer to; `example`: a customer to show (a synthetic one)."""
    return {
        "Customer": customer_schema(),
        "DecisionsRequest": {
            "type": "object",
            "example": {"customers": [example]},
            "properties": {
                "customers": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/Customer"},
                    "minItems": 1,
                    "maxItems": MAX_CUSTOMERS,
                }
            },
            "required": ["customers"],
        },
        "Decision": decision_schema(decision_columns),
        "Rejected": _REJECTED,
        "DecisionsResponse": {
            "type": "object",
            "description": "decisions + rejected = customers sent",
            "properties": {
                "decisions": {"type": "array", "items": {"$ref": "#/components/schemas/Decision"}},
                "rejected": {"type": "array", "items": {"$ref": "#/components/schemas/Rejected"}},
            },
            "required": ["decisions", "rejected"],
        },
        "Response": {
            "type": "object",
            "properties": {
                "decision_id": {"type": "string"},
                "responded": {"type": "integer", "enum": [0, 1], "description": "took the offer"},
                "retained": {"type": "integer", "enum": [0, 1], "description": "still a customer"},
            },
            "required": ["decision_id", "responded", "retained"],
        },
        "ResponsesRequest": {
            "type": "object",
            "example": {
                "responses": [{"decision_id": "<from a decision>", "responded": 1, "retained": 1}]
            },
            "properties": {
                "responses": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/Response"},
                    "minItems": 1,
                    "maxItems": MAX_CUSTOMERS,
                }
            },
            "required": ["responses"],
        },
        "ResponsesResponse": {
            "type": "object",
            "description": "recorded + rejected = responses sent",
            "properties": {
                "recorded": {"type": "integer"},
                "rejected": {"type": "array", "items": {"$ref": "#/components/schemas/Rejected"}},
            },
            "required": ["recorded", "rejected"],
        },
        "Health": {
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["ok", "failing"]},
                "bundle_id": {"type": "string"},
                "data": {"type": "object", "description": "path, sha256, rows of the data"},
                "synthetic": {"type": "boolean", "description": "learnt from synthetic data"},
            },
            "required": ["status", "bundle_id", "synthetic"],
            "additionalProperties": True,
        },
        "Error": _ERROR,
    }


def _json(ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def request_body(ref: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def v1_responses(ok: str, ok_text: str) -> dict[int | str, Any]:
    """The status codes of a /v1 endpoint, each with its meaning."""
    limit = f"{MAX_BODY_BYTES // 2**20} MB and {MAX_CUSTOMERS:,} entries"
    return {
        200: _json(ok, ok_text),
        400: _json("Error", "not JSON, not UTF-8, empty, or not the documented shape"),
        401: _json("Error", "NBA_API_KEY is set and the Bearer token is missing or wrong"),
        413: _json("Error", f"the body is larger than {limit}"),
        415: _json("Error", "the Content-Type is not application/json"),
        500: _json("Error", "an internal error (logged); nothing was decided or recorded"),
        503: _json("Error", "the history cannot take it now (writer stopped or far behind)"),
    }


def health_responses() -> dict[int | str, Any]:
    return {
        200: _json("Health", "serving: the bundle, its data and the history writer"),
        503: _json("Health", "not serving decisions: the history writer has stopped"),
    }


def description() -> str:
    return (
        "Next best actions for credit-card customers, over the same scoring path as "
        "`nba score`. Limits: a body of at most "
        f"{MAX_BODY_BYTES // 2**20} MB and at most {MAX_CUSTOMERS:,} customers or responses a "
        "request (413 beyond). When the server has NBA_API_KEY set, /v1 endpoints need "
        "`Authorization: Bearer <key>` (401 otherwise); /health, /metrics and the docs are "
        "open. Any path or method not listed answers 404 or 405 with a JSON `detail`."
    )
