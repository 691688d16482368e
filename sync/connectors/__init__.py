"""Connectors: how the sync engine talks to a business app's API."""

from .base import Connector, ConnectorError, RemoteRecord, SetupFinding
from .odata import ConnectorPairs, ODataConnector, connector_for

__all__ = [
    "Connector",
    "ConnectorError",
    "ConnectorPairs",
    "ODataConnector",
    "RemoteRecord",
    "SetupFinding",
    "connector_for",
]
