"""axe-core, the accessibility checker, run in a page, and the width checks of the pages.

axe-core is installed by `make test` with npm (package.json pins it) into node_modules/."""

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

AXE = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
# What people cannot get past: axe's "serious" and "critical" findings; and, whatever axe
# rates them, the rules that keep a page's landmarks named, distinct and reachable (content
# outside landmarks, two unnamed navigations, no way to skip the menu).
BLOCKING = ("serious", "critical")
LANDMARK_RULES = (
    "region",
    "landmark-unique",
    "landmark-one-main",
    "bypass",
    "page-has-heading-one",
)

RUN_AXE = """async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
    count: v.nodes.length,
  }));
}"""

# What runs past the window: the page's own width, and the elements wider than it.
OVERFLOW = """() => {
  const width = window.innerWidth;
  const wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.right > width + 1 && box.width > 0) {
      const classes = typeof el.className === "string" ? el.className.trim() : "";
      wide.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
        (classes ? "." + classes.split(/\\s+/).join(".") : "") + " right=" + Math.round(box.right));
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: width,
          wide: wide.slice(0, 8)};
}"""


@dataclass
class Finding:
    url: str
    width: int
    what: str

    def __str__(self) -> str:
        return f"{self.url} at {self.width} px: {self.what}"


def axe_violations(page) -> list[dict]:
    """axe's serious and critical violations on the page as it is now, and its landmark
    findings."""
    assert AXE.exists(), f"{AXE} is missing: `make test` installs it (npm ci)"
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    return [
        v for v in page.evaluate(RUN_AXE) if v["impact"] in BLOCKING or v["id"] in LANDMARK_RULES
    ]


def overflow(page) -> dict | None:
    """What runs past the window's width, or None when the page fits."""
    measured = page.evaluate(OVERFLOW)
    if measured["scrollWidth"] <= measured["innerWidth"]:
        return None
    return measured
