"""How the demo apps' APIs refuse a request: an HTTP status with the app's error body,
{"error": {"code": ..., "message": ...}}, as Business Central and Dataverse answer."""

from django.http import JsonResponse


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def error_response(error: ApiError) -> JsonResponse:
    response = JsonResponse(
        {"error": {"code": error.code, "message": error.message}}, status=error.status
    )
    for name, value in error.headers.items():
        response[name] = value
    return response
