"""Development only, never imported by the worker or the web apps: the embedded stack (`make run`), its demo
data, fake provider and OIDC servers, the benchmarks and the screenshot and check scripts."""
