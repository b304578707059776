let extraTargets: [FuzzTarget] = []
