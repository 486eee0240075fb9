"""Go: AlphaGo's policy network (Silver et al. 2016) on real games."""
