package net

import "github.com/govmm/govmm/memory"

func memAddr(a uint64) memory.GuestAddr { return memory.GuestAddr(a) }
