"""``univar demo``: the main job on bundled data, offline, ending in one shareable ``report.html``.

:mod:`~univar.demo.steps` runs the job, each step filling in its part of a ``DemoResult`` and writing its files;
:mod:`~univar.demo.sections` turns the result into the report, one function per section.
"""

from univar.demo.steps import DEMO_QUESTIONS, DemoResult, map_fidelity, run_demo, sample_questions, stance_example

__all__ = ["DEMO_QUESTIONS", "DemoResult", "map_fidelity", "run_demo", "sample_questions", "stance_example"]
