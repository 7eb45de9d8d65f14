package sim

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// The queue pops in (time, push order) order, whatever the interleaving
// of pushes and pops, as long as nothing is pushed before the last pop:
// checked against a sorted list.
func TestQueueOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var q queue
		type item struct {
			at  int64
			seq uint32
		}
		var ref []item
		var seq uint32
		now := int64(0)
		for _, op := range rapid.SliceOfN(rapid.IntRange(0, 9), 1, 300).Draw(t, "ops") {
			if op < 6 || len(ref) == 0 { // push, often at the same instant or tick
				var d int64
				switch rapid.IntRange(0, 3).Draw(t, "spread") {
				case 0:
					d = 0
				case 1:
					d = rapid.Int64Range(0, 1<<tickShift).Draw(t, "d")
				default:
					d = rapid.Int64Range(0, 1<<40).Draw(t, "d")
				}
				seq++
				q.push(event{at: now + d, id: seq})
				ref = append(ref, item{now + d, seq})
				continue
			}
			slices.SortStableFunc(ref, func(a, b item) int {
				if a.at != b.at {
					if a.at < b.at {
						return -1
					}
					return 1
				}
				return int(a.seq) - int(b.seq)
			})
			want := ref[0]
			ref = ref[1:]
			got := q.pop()
			if got.at != want.at || got.id != want.seq {
				t.Fatalf("popped (%d, #%d), want (%d, #%d)", got.at, got.id, want.at, want.seq)
			}
			now = got.at
		}
		if q.len() != len(ref) {
			t.Fatalf("len %d, want %d", q.len(), len(ref))
		}
	})
}

func TestQueueRejectsThePast(t *testing.T) {
	var q queue
	q.push(event{at: 10 << tickShift})
	q.pop()
	defer func() {
		if recover() == nil {
			t.Fatal("an event before the last pop was accepted")
		}
	}()
	q.push(event{at: 0})
}

// BenchmarkQueue moves events through the queue as the world does: a
// steady population, each pop followed by a push up to 40 s ahead.
func BenchmarkQueue(b *testing.B) {
	for _, n := range []int{3000, 30000} {
		b.Run(fmt.Sprintf("pending=%d", n), func(b *testing.B) {
			var q queue
			x := uint64(1)
			next := func() int64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return int64(x % 40e9) }
			for i := 0; i < n; i++ {
				q.push(event{at: next()})
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e := q.pop()
				q.push(event{at: e.at + next()})
			}
		})
	}
}
