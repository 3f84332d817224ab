package entcache

import "testing"

func TestEvict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		size, max int
		want      int
	}{
		{"RoomLeft", 2, 3, 2},
		{"FullDropsOne", 3, 3, 2},
		{"OverfullShrinks", 5, 3, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[int]bool{}
			for i := range tt.size {
				m[i] = true
			}
			evict(m, tt.max)
			if len(m) != tt.want {
				t.Errorf("len after evict = %d, want %d", len(m), tt.want)
			}
		})
	}
}
