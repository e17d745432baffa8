"""Models trained on a brand's labels, as stored in ``models`` (storage.schema).

The payload is read by analysis.learned.load_model, which takes no pickle: a model
file copied from elsewhere can at worst fail to load, never run code.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.store import Store


@dataclass(frozen=True, slots=True)
class ActiveModel:
    model_id: int
    brand: str
    version: str
    payload: bytes


def active_models(store: Store) -> dict[str, ActiveModel]:
    """The model in effect for each brand that has one (at most one per brand)."""
    with store.native() as db:
        rows = db.execute(
            "SELECT model_id, brand, version, payload FROM models WHERE status = 'active' ORDER BY model_id"
        ).fetchall()
    return {brand: ActiveModel(model_id, brand, version, bytes(payload)) for model_id, brand, version, payload in rows}
