"""Routing plans (issue 3): placeholder model, extended by the routing work."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RoutingPlan(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
