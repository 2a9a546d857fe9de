//go:build race

package dcssim

const raceEnabled = true
