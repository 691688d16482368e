"""Connectors: how the sync engine talks to a business app's API."""

from .base import Connector, ConnectorError, RemoteRecord, SetupFinding, Throttled
from .odata import ConnectorPairs, ODataConnector, connector_for

__all__ = [
    "Connector",
    "ConnectorError",
    "ConnectorPairs",
    "ODataConnector",
    "RemoteRecord",
    "SetupFinding",
    "Throttled",
    "connector_for",
]
