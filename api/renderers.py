"""JSON answers with <, > and & written as \\u escapes: the values are the same to any JSON
reader, and an answer a browser sniffs or a page pastes in holds no markup."""

from rest_framework.renderers import JSONRenderer

ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


class EscapedJSONRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        body = super().render(data, accepted_media_type, renderer_context)
        if not body or not any(char in body for char in b"<>&"):
            return body
        return body.decode().translate(ESCAPES).encode()
