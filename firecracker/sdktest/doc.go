// Package sdktest holds the test that drives govmm with the real
// Firecracker client, github.com/firecracker-microvm/firecracker-go-sdk
// v1.0.0, through its own machine and process runner: govmm is started as
// "firecracker" (a symlink) and answers the SDK's requests on its socket.
package sdktest
