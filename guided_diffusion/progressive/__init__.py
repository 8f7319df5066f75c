"""Progressive Guidance (ProG) and the guidance family around it.

``information_degree`` (s_t and its schedule, Eq. 5) <- ``guidance`` (the guidance terms, Eq. 4, EDS, CFG)
and ``relevance`` (s_T from class descriptions or a classifier's confusion, Sec. 3.1) <- ``plan`` (a
guidance name and its flags as an information degree and the networks to sample with).
"""
