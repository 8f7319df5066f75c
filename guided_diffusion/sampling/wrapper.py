"""A module that wraps a network and reads the attributes it lacks off it (``null_class``, ``num_classes``, ...)."""

from __future__ import annotations

from torch import nn


class Wrapper(nn.Module):
    """Wraps the network stored under the attribute named by ``wrapped``; other attributes are the network's."""

    wrapped = "net"

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == self.wrapped:
                raise
            return getattr(getattr(self, self.wrapped), name)
