//go:build !linux

package main

import (
	"errors"
	"time"
)

func gobwasEpollServe(time.Duration) (string, error) {
	return "", errors.New("gobwas/epoll needs Linux's epoll")
}
