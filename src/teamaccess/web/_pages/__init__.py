"""The page handlers, one module per page or group of pages (``base`` holds the steps
they share); :class:`Pages` combines them."""

from .base import ResourcesHook, UrlHook
from .pages import Pages

__all__ = ["Pages", "ResourcesHook", "UrlHook"]
