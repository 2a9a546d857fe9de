//go:build !race

package dcssim

const raceEnabled = false
