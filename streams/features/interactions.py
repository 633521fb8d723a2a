"""The interaction event classes, as a tuple usable with isinstance."""

from __future__ import annotations

from schemas.events import Click, Dismiss, Implement, Rate, Save, Share, View

INTERACTIONS = (View, Click, Save, Share, Rate, Implement, Dismiss)
