"""The OpenAPI schema describes the Decision and the job, which every later package consumes."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def _response_ref(spec: dict[str, Any], path: str, method: str, status: str = "200") -> str:
    content = spec["paths"][path][method]["responses"][status]["content"]["application/json"]
    schema = content["schema"]
    return str(schema.get("$ref") or schema["items"]["$ref"]).rsplit("/", 1)[-1]


def test_the_gate_jobs_usability_and_pia_status_have_schemas(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    assert _response_ref(spec, "/api/gate/explain", "post") == "DecisionPublic"
    assert _response_ref(spec, "/api/jobs", "post", "201") == "JobSubmitted"
    assert _response_ref(spec, "/api/jobs", "get") == "JobPublic"
    assert _response_ref(spec, "/api/jobs/{job_id}", "get") == "JobPublic"
    assert _response_ref(spec, "/api/governance/purposes/{key}/usability",
                         "get") == "UsabilityPublic"
    assert _response_ref(spec, "/api/governance/purposes/{key}/pia", "get") == "PurposePiaPublic"
    decision = spec["components"]["schemas"]["DecisionPublic"]
    assert {"allowed", "reasons", "flows", "consent_flows", "inputs_hash"} <= set(
        decision["required"])
    reason_ref = decision["properties"]["reasons"]["items"]["$ref"].rsplit("/", 1)[-1]
    assert reason_ref.endswith("ReasonPublic")
    reason = spec["components"]["schemas"][reason_ref]
    assert {"code", "message_ja", "message_en"} <= set(reason["required"])
