import resource, pytest
def pytest_sessionfinish(session):
    s=resource.getrusage(resource.RUSAGE_SELF); c=resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"\nSELF {s.ru_utime+s.ru_stime:.1f} CHILDREN {c.ru_utime+c.ru_stime:.1f}")
