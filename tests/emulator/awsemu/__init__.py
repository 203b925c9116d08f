"""awsemu: a local, model-driven test double of the AWS APIs aviary uses.

Run it with ``tests/emulator/run-emulator`` (or ``python3 -m awsemu`` from
tests/emulator). See tests/emulator/README.md for what it models.
"""
