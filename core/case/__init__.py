"""The dunning case as a pure decider (functional core): `decide(case, event, now) -> Decision`.

- `events.py`: what can happen to a case (signals, staff actions, the loop, answers to commands);
- `commands.py`: what the case asks the workflow to do (activities, timers, children, signals);
- `decider.py`: the rules;
- `refusals.py`: why a staff action cannot be accepted now (the update validators ask it).

The workflow `workflows/dunning.py` is the imperative shell around it.
"""
