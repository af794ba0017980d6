//go:build !race

package memory

func raceRelease() {}
func raceAcquire() {}
