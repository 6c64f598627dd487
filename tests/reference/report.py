"""PASS/FAIL lines and the closing `N passed, M failed` line shared by the check scripts."""


class Report:
    def __init__(self, width=40):
        self.width = width
        self.passed = 0
        self.failed = 0

    def check(self, ok, name, detail=""):
        print(f"{'PASS' if ok else 'FAIL'}  {name:<{self.width}} {detail}", flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok

    def finish(self):
        """Prints the closing line; returns the process exit code."""
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        return 1 if self.failed else 0
