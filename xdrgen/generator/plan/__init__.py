"""The marshalling plan: per type, what encoding and decoding do, decided once.

:mod:`.nodes` defines the plan's node types (docs/marshalling-plan.md),
:mod:`.planner` makes a plan from the resolved model.  The Python emitters
(:mod:`xdrgen.generator.marshal`) consume it; :func:`to_data` gives it as plain
data for other consumers (a compiled engine).
"""

from xdrgen.generator.plan.nodes import TypePlan, to_data
from xdrgen.generator.plan.planner import Planner, plan_module, plan_value

__all__ = ["Planner", "TypePlan", "plan_module", "plan_value", "to_data"]
