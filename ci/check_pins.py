"""Fail if installing attnlab moved any version that Colab pins.

Usage: python ci/check_pins.py ci/colab-constraints.txt FREEZE_FILE
"""

import re
import sys


def read(path: str) -> dict[str, str]:
    pins = {}
    for line in open(path, encoding="utf-8"):
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def main() -> int:
    wanted, installed = read(sys.argv[1]), read(sys.argv[2])
    moved = {name: (version, installed.get(name)) for name, version in wanted.items()
             if installed.get(name) != version}
    for name, (want, got) in moved.items():
        print(f"Colab pin moved: {name}=={want} is now {got}", file=sys.stderr)
    if not moved:
        print(f"Colab pins intact: {', '.join(f'{k}=={v}' for k, v in wanted.items())}")
    return 1 if moved else 0


if __name__ == "__main__":
    sys.exit(main())
