"""Error types the emulator raises; the server turns them into the service's error bodies."""

from __future__ import annotations


class ApiError(Exception):
    """A REST error as the service sends it: `{"error_code", "message"}` with an HTTP status."""

    def __init__(self, status: int, error_code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error_code": self.error_code, "message": self.message}


class ScimError(ApiError):
    """SCIM errors use their own body: `{"schemas", "detail", "status", "scimType"?}`."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None):
        super().__init__(status, f"SCIM_{status}", detail)
        self.scim_type = scim_type

    def body(self) -> dict:
        body = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "detail": self.message,
            "status": str(self.status),
        }
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


def not_found(message: str) -> ApiError:
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", message)


def invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def already_exists(message: str, status: int = 400) -> ApiError:
    # The legacy 2.0 services send RESOURCE_ALREADY_EXISTS with HTTP 400; the SDK maps by error_code.
    return ApiError(status, "RESOURCE_ALREADY_EXISTS", message)


def invalid_state(message: str) -> ApiError:
    return ApiError(400, "INVALID_STATE", message)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BAD_REQUEST", message)


def malformed(message: str) -> ApiError:
    return ApiError(400, "MALFORMED_REQUEST", message)
