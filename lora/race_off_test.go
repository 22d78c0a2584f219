//go:build !race

package lora

const raceEnabled = false
