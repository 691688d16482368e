import pytest

from errors.links import safe_link


@pytest.mark.parametrize(
    "url",
    [
        "https://crm.example.com/main.aspx?etn=account&id=1",
        "http://127.0.0.1:8000/demo/erp/customers/1/",
        "HTTPS://ERP.EXAMPLE.COM/x",
    ],
)
def test_http_and_https_urls_become_links(url):
    assert safe_link(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox",
        "//evil.example.com/x",
        "/relative/path",
        "https://",
        "ftp://files.example.com/x",
        "https://example.com/a b",
        "java\nscript:alert(1)",
        "https://example.com/\x00",
        "http://[::1",
    ],
)
def test_other_urls_never_become_links(url):
    assert safe_link(url) is None
