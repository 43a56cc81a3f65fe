"""fsaudit crash: record a workload, build the states a power cut could leave, run the program's own check on each.

One module per step: recording (the workload's calls and bytes), models (what
a crash may lose), states (which states to try), checker (materialise one and
run the check), minimise (the smallest loss that still fails), report."""
