"""The ``rbc:`` configuration section: how the bridge plays Reconnaissance Blind Chess with a UCI engine."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# the caps each way of holding the belief is given when the config names none (rbc.max_boards, rbc.max_children)
DEFAULT_CAPS: dict[str, tuple[int, int]] = {"boards": (20_000, 200_000), "arrays": (400_000, 4_000_000)}


class RbcConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    belief: Literal["boards", "arrays"] = Field(
        "boards", description="how the possible boards are held: 'boards' (python-chess objects) or 'arrays' "
                              "(numpy: ~5x less memory a board and 10-20x faster steps, so the belief stays exact "
                              "at hundreds of thousands of boards; the defaults of max_boards and max_children "
                              "become 400,000 and 4,000,000)")
    max_boards: int = Field(DEFAULT_CAPS["boards"][0], ge=10, le=5_000_000,
                            description="cap on the possible boards kept after every step; above it a sample "
                                        "(drawn by likelihood) is kept; on a short clock the player keeps fewer "
                                        "(40 a second left; 100 with belief: arrays), and fewer still where the "
                                        "game measures the belief's steps slow (a turn's bookkeeping planned at "
                                        "6% of the clock left)")
    max_children: int = Field(DEFAULT_CAPS["boards"][1], ge=100, le=50_000_000,
                              description="cap on the opponent's possible moves from those boards, kept until "
                                          "the sense narrows them (each board has up to ~60); above it a sample "
                                          "is kept")
    move_boards: int = Field(16, ge=1, le=1000,
                             description="possible boards scored by the engine for each move; a move's time "
                                         "budget larger than what they cost buys up to 4x more")
    engine_time: float = Field(0.05, gt=0, le=60,
                               description="engine seconds per board proposing moves (half that per candidate "
                                           "scored); shrinks on a short clock, grows up to 4x on a long one")
    seed: int | None = Field(None, description="random seed for sampling (none: random); set it to replay a game")
    candidates: int = Field(8, ge=1, le=100,
                            description="candidate moves (the engine's favourites across the boards) scored on "
                                        "every sampled board")
    mean_weight: float = Field(0.7, ge=0, le=1,
                               description="a move's score is this share of its mean value over the boards plus "
                                           "the rest of its value on the worst board")
    safety_boards: int = Field(1000, ge=1, le=100_000,
                               description="boards (drawn by weight) on which each candidate move is checked for "
                                           "capturing the king or leaving ours en prise")
    sense_crisis_weight: float = Field(8.0, ge=0, le=1000,
                                       description="how much more the sense values settling whether a king is "
                                                   "attacked than shrinking the set of possible boards")
    sense_king_guard: float = Field(0.01, ge=0, le=2,
                                    description="chance that the opponent can capture our king on its next move "
                                                "(over all possible boards) above which the sense looks where the "
                                                "attackers would stand, before anything else (above 1: never)")
    sense_decision_weight: float = Field(10.0, ge=0, le=1000,
                                         description="how much the sense values checking what the likely moves "
                                                     "hinge on (0: don't look at moves when sensing)")
    sense_sample: int = Field(800, ge=10, le=100_000,
                              description="boards (drawn by weight) on which the sense square is chosen")
    reserve: float = Field(5.0, ge=0, le=600,
                           description="seconds of the clock kept in reserve, never planned for")
    transcript_info: bool = Field(False,
                                  description="also write the engine's 'info' lines to the transcript (large)")

    @model_validator(mode="before")
    @classmethod
    def _caps_for_the_belief(cls, data: Any) -> Any:
        """``max_boards`` and ``max_children`` default to what the chosen belief holds comfortably."""
        if isinstance(data, dict) and data.get("belief") in DEFAULT_CAPS:
            boards, children = DEFAULT_CAPS[data["belief"]]
            data = {"max_boards": boards, "max_children": children, **data}
        return data
