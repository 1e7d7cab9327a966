"""Fails when an installed dependency has a known vulnerability that a release fixes.

Runs pip-audit over the project's virtual environment (every pinned package and what it
pulled in); vulnerabilities without a fixed release are printed but do not fail the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

bin_dir = Path(sys.executable).parent
result = subprocess.run(
    [str(bin_dir / "pip-audit"), "--progress-spinner", "off", "--skip-editable", "-f", "json"],
    capture_output=True,
    text=True,
    check=False,
)
if not result.stdout.strip():
    print(result.stderr, file=sys.stderr)
    sys.exit("pip-audit produced no report")
report = json.loads(result.stdout)
fixable = []
for dependency in report.get("dependencies", []):
    for vuln in dependency.get("vulns", []):
        line = f"{dependency['name']} {dependency['version']}: {vuln['id']}"
        if vuln.get("fix_versions"):
            fixable.append(f"{line} (fixed in {', '.join(vuln['fix_versions'])})")
        else:
            print(f"known, no fixed release yet: {line}")
print(f"pip-audit: {len(report.get('dependencies', []))} packages, {len(fixable)} fixable")
for line in fixable:
    print(f"FIXABLE: {line}")
sys.exit(1 if fixable else 0)
