"""The ``rbc:`` configuration section: how the bridge plays Reconnaissance Blind Chess with a UCI engine."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RbcConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_boards: int = Field(5000, ge=10, le=1_000_000,
                            description="cap on the set of possible boards kept; above it a sample is kept")
    move_boards: int = Field(16, ge=1, le=1000, description="possible boards scored by the engine for each move")
    engine_time: float = Field(0.05, gt=0, le=60, description="engine seconds per board scored (shrinks with the clock)")
    seed: int | None = Field(None, description="random seed for sampling (none: random); set it to replay a game")
