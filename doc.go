// Package domo holds the vocabulary shared by every part of the domo
// microservices framework: the error type that crosses the wire, its codes,
// and the sentinel errors callers branch on.
//
// The framework itself lives in subpackages:
//
//	mdp      the wire: Majordomo (MDP/0.1, MDP/0.2, MMI) frames and the domo envelope
//	broker   routes requests from clients to workers
//	worker   the SDK for writing services
//	client   the SDK for calling them
//
// A request fails with a *domo.Error whose Code says why; errors.Is matches
// such an error against the sentinels below by code:
//
//	err := c.Call(ctx, "tea.brew", in, &out)
//	if errors.Is(err, domo.ErrUnknownService) { ... }
package domo
