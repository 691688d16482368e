"""Connectors: how the sync engine talks to a business app's API."""

from .base import Connector, ConnectorError, RemoteRecord, SetupFinding, Throttled
from .odata import ODataConnector, connector_for

__all__ = [
    "Connector",
    "ConnectorError",
    "ODataConnector",
    "RemoteRecord",
    "SetupFinding",
    "Throttled",
    "connector_for",
]
