"""What the known pixels say about the unknown ones, before the closed-form solve.

    information_flow  known-to-unknown flow: a colour-mixture estimate of each unknown pixel's alpha
    trimming          patch-based trimming: unknown pixels whose patch matches only one side
    deep_unknown      trimming far from any known pixel (wide painted grey areas)
    transparency      is the unknown region see-through? (then no flow or trimming)
    priors            the data term the solve takes from all of the above
"""
