package sessiontest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterNodeTimeout is the cluster-node-timeout of StartRedisCluster's
// nodes: short, so that a replica takes over a killed master within a
// few seconds (Redis's default of 15 s would dominate any failover test).
const ClusterNodeTimeout = time.Second

// SentinelMasterName is the name the sentinels of StartRedisSentinel
// monitor their master under (the configuration's redis.master_name).
const SentinelMasterName = "ggmaster"

// redisProc is one redis-server process (a data node or a sentinel) on
// a loopback port, in a directory of the test.
type redisProc struct {
	port int
	args []string
	log  string

	mu  sync.Mutex
	cmd *exec.Cmd
}

func (p *redisProc) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

// start runs the process. Pdeathsig kills it with the test binary, even
// when that dies without running its cleanups (a -timeout panic), so no
// server outlives the test command.
func (p *redisProc) start(t testing.TB, bin string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s %s: %v", bin, strings.Join(p.args, " "), err)
	}
	p.cmd = cmd
}

// kill sends SIGKILL (no shutdown, no save: a crash) and waits for the exit.
func (p *redisProc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.cmd = nil
}

// redisBinaries returns redis-server and redis-cli from PATH; without
// them the test skips locally and fails under CI=true (scripts/test.sh
// installs them).
func redisBinaries(t testing.TB) (server, cli string) {
	t.Helper()
	server, err1 := exec.LookPath("redis-server")
	cli, err2 := exec.LookPath("redis-cli")
	if err1 != nil || err2 != nil {
		msg := "redis-server and redis-cli must be on PATH (Debian package redis-server; scripts/test.sh installs it)"
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: this test must not skip)", msg)
		}
		t.Skip(msg)
	}
	return server, cli
}

// freePorts reserves n distinct loopback ports by listening on all of them
// at once, then frees them for the servers. A cluster node also listens
// on port+10000 (its bus), so ports are taken below 55535.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var ports []int
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		ls = append(ls, l)
		p := l.Addr().(*net.TCPAddr).Port
		if p >= 55535 {
			continue
		}
		if b, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000)); err == nil {
			ls = append(ls, b)
			ports = append(ports, p)
		}
	}
	return ports
}

// waitPing waits until addr answers PING.
func waitPing(t testing.TB, addr string, within time.Duration) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis on %s did not answer within %v: %v", addr, within, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dataArgs are the arguments every data node gets: loopback only, no
// persistence (the tests are about failover, not restarts), and a replica
// synchronised at once (the default waits 5 s for more replicas to come).
func dataArgs(port int, dir string) []string {
	return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--repl-diskless-sync-delay", "0"}
}

// RedisCluster is a private Redis Cluster of three masters with one
// replica each, on loopback ports, made by `redis-cli --cluster create`.
type RedisCluster struct {
	t     testing.TB
	bin   string
	nodes []*redisProc
}

// StartRedisCluster starts the six nodes, joins them and waits until the
// cluster state is ok and every node agrees. It takes a few seconds; tests
// share one where they can (each with its own key prefix). The processes
// and their directory go when the test ends.
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	bin, cli := redisBinaries(t)
	dir := t.TempDir()
	c := &RedisCluster{t: t, bin: bin}
	t.Cleanup(c.stop)
	// `redis-cli --cluster create` waits without end for the nodes to
	// agree; on a busy machine that has once hung (nodes that never
	// learned of each other: a handshake not finished within
	// cluster-node-timeout is dropped). So the nodes start with a long
	// timeout, lowered once they agree, and an attempt that still hangs
	// is given up after a bound and made again on fresh ports.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		out, err := c.create(t, dir, cli, attempt)
		if err == nil {
			break
		}
		c.stop()
		if attempt == attempts {
			t.Fatalf("redis-cli --cluster create failed %d times, the last: %v\n%s", attempts, err, out)
		}
		t.Logf("redis-cli --cluster create: %v; starting again on other ports", err)
	}
	c.waitHealthy(30 * time.Second)
	for _, p := range c.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cl := redis.NewClient(&redis.Options{Addr: p.addr()})
		err := cl.ConfigSet(ctx, "cluster-node-timeout", strconv.FormatInt(ClusterNodeTimeout.Milliseconds(), 10)).Err()
		_ = cl.Close()
		cancel()
		if err != nil {
			t.Fatalf("lower cluster-node-timeout on %s: %v", p.addr(), err)
		}
	}
	return c
}

// create starts six fresh nodes and joins them with redis-cli.
func (c *RedisCluster) create(t testing.TB, dir, cli string, attempt int) ([]byte, error) {
	t.Helper()
	c.nodes = nil
	for _, port := range freePorts(t, 6) {
		d := filepath.Join(dir, strconv.Itoa(attempt), strconv.Itoa(port))
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		p := &redisProc{port: port, log: filepath.Join(d, "redis.log"), args: append(dataArgs(port, d),
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "10000",
			// A replica may always take over, however long it was cut
			// off: the tests kill masters on purpose.
			"--cluster-replica-validity-factor", "0")}
		p.start(t, c.bin)
		c.nodes = append(c.nodes, p)
	}
	for _, p := range c.nodes {
		waitPing(t, p.addr(), 10*time.Second)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, cli, args...).CombinedOutput()
}

// Addrs are host:port of all six nodes (the configuration's redis.addrs).
func (c *RedisCluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, p := range c.nodes {
		out[i] = p.addr()
	}
	return out
}

func (c *RedisCluster) stop() {
	for _, p := range c.nodes {
		p.kill()
	}
}

// nodeInfo is one line of CLUSTER NODES as a node sees it.
type nodeInfo struct {
	addr   string
	master bool
	failed bool
	slots  bool
}

func clusterNodes(ctx context.Context, addr string) ([]nodeInfo, error) {
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer cl.Close()
	s, err := cl.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, err
	}
	var out []nodeInfo
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		a, _, _ := strings.Cut(f[1], "@")
		out = append(out, nodeInfo{
			addr:   a,
			master: strings.Contains(f[2], "master"),
			failed: strings.Contains(f[2], "fail"),
			slots:  len(f) > 8,
		})
	}
	return out, nil
}

// waitHealthy waits until every running node reports cluster_state:ok
// and sees three masters with slots, none failed.
func (c *RedisCluster) waitHealthy(within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for {
		ok := true
		for _, p := range c.nodes {
			if !p.running() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			cl := redis.NewClient(&redis.Options{Addr: p.addr(), MaxRetries: -1})
			info, err := cl.ClusterInfo(ctx).Result()
			_ = cl.Close()
			nodes, err2 := clusterNodes(ctx, p.addr())
			cancel()
			if err != nil || err2 != nil || !strings.Contains(info, "cluster_state:ok") {
				ok, last = false, fmt.Sprintf("%s: %v %v %q", p.addr(), err, err2, firstLine(info))
				break
			}
			masters := 0
			for _, n := range nodes {
				if n.master && n.slots && !n.failed {
					masters++
				}
			}
			if masters != 3 {
				ok, last = false, fmt.Sprintf("%s sees %d healthy masters with slots", p.addr(), masters)
				break
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster not healthy within %v: %s", within, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func (p *redisProc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// KillMaster kills (SIGKILL) the master at addr, as a crash would. Its
// replica takes over after about ClusterNodeTimeout plus an election.
func (c *RedisCluster) KillMaster(addr string) {
	c.t.Helper()
	for _, p := range c.nodes {
		if p.addr() == addr {
			p.kill()
			return
		}
	}
	c.t.Fatalf("no cluster node at %s", addr)
}

// WaitFailedOver waits until every running node flags the killed master
// at addr as failed and they agree again on three healthy masters (its
// replica promoted in its place).
func (c *RedisCluster) WaitFailedOver(addr string, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		flagged := true
		for _, p := range c.nodes {
			if !p.running() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			nodes, err := clusterNodes(ctx, p.addr())
			cancel()
			seen := false
			for _, n := range nodes {
				seen = seen || (n.addr == addr && n.failed && !n.slots)
			}
			if err != nil || !seen {
				flagged = false
				break
			}
		}
		if flagged {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no node took over from %s within %v", addr, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.waitHealthy(time.Until(deadline))
}

// RedisSentinel is a private master, its replica and three sentinels
// monitoring them as SentinelMasterName, on loopback ports.
type RedisSentinel struct {
	t         testing.TB
	data      []*redisProc // master first, as started
	sentinels []*redisProc
}

// StartRedisSentinel starts the master, the replica and the sentinels, and
// waits until the replica is in sync and every sentinel knows it, so that
// a failover can start at once.
func StartRedisSentinel(t testing.TB) *RedisSentinel {
	t.Helper()
	bin, _ := redisBinaries(t)
	dir := t.TempDir()
	s := &RedisSentinel{t: t}
	t.Cleanup(s.stop)
	ports := freePorts(t, 5)
	for i, port := range ports[:2] {
		d := filepath.Join(dir, strconv.Itoa(port))
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		args := dataArgs(port, d)
		if i == 1 {
			args = append(args, "--replicaof", "127.0.0.1", strconv.Itoa(ports[0]))
		}
		p := &redisProc{port: port, log: filepath.Join(d, "redis.log"), args: args}
		p.start(t, bin)
		s.data = append(s.data, p)
	}
	for _, port := range ports[2:] {
		d := filepath.Join(dir, strconv.Itoa(port))
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		// A sentinel rewrites its configuration file, so each gets one.
		// It is told of the replica, which it would otherwise learn of
		// only from the master's INFO, polled every 10 s.
		conf := filepath.Join(d, "sentinel.conf")
		body := fmt.Sprintf(`port %d
bind 127.0.0.1
protected-mode no
dir %s
sentinel monitor %s 127.0.0.1 %d 2
sentinel down-after-milliseconds %[3]s 1000
sentinel failover-timeout %[3]s 10000
sentinel parallel-syncs %[3]s 1
sentinel known-replica %[3]s 127.0.0.1 %[5]d
`, port, d, SentinelMasterName, ports[0], ports[1])
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		p := &redisProc{port: port, log: filepath.Join(d, "sentinel.log"), args: []string{conf, "--sentinel"}}
		p.start(t, bin)
		s.sentinels = append(s.sentinels, p)
	}
	for _, p := range append(append([]*redisProc{}, s.data...), s.sentinels...) {
		waitPing(t, p.addr(), 10*time.Second)
	}
	s.waitSettled(s.data[0].addr(), 30*time.Second)
	return s
}

func (s *RedisSentinel) stop() {
	for _, p := range append(append([]*redisProc{}, s.sentinels...), s.data...) {
		p.kill()
	}
}

// SentinelAddrs are host:port of the three sentinels (redis.addrs when
// redis.master_name is set).
func (s *RedisSentinel) SentinelAddrs() []string {
	out := make([]string, len(s.sentinels))
	for i, p := range s.sentinels {
		out[i] = p.addr()
	}
	return out
}

// KillReplica kills (SIGKILL) whichever data node is not the master the
// first sentinel names.
func (s *RedisSentinel) KillReplica() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := s.Master(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, p := range s.data {
		if p.addr() != m {
			p.kill()
			return
		}
	}
}

// MasterName is the monitored master's name (redis.master_name).
func (s *RedisSentinel) MasterName() string { return SentinelMasterName }

// Master returns host:port of the master as the first sentinel sees it.
func (s *RedisSentinel) Master(ctx context.Context) (string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.sentinels[0].addr(), MaxRetries: -1})
	defer sc.Close()
	a, err := sc.GetMasterAddrByName(ctx, SentinelMasterName).Result()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(a[0], a[1]), nil
}

// Failover asks the first sentinel for a failover (SENTINEL FAILOVER: the
// replica is promoted without waiting for the master to fail), then waits
// until all sentinels name the new master and it answers as a master. It
// returns the new master's address. The old master rejoins as a replica
// later, on its own; WaitSettled waits for that too.
func (s *RedisSentinel) Failover(within time.Duration) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	old, err := s.Master(ctx)
	if err != nil {
		s.t.Fatalf("sentinel master before failover: %v", err)
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.sentinels[0].addr(), MaxRetries: -1})
	defer sc.Close()
	if err := sc.Failover(ctx, SentinelMasterName).Err(); err != nil {
		s.t.Fatalf("SENTINEL FAILOVER %s: %v", SentinelMasterName, err)
	}
	for {
		if cur, err := s.Master(ctx); err == nil && cur != old && s.switched(ctx, cur) {
			return cur
		}
		if ctx.Err() != nil {
			s.t.Fatalf("sentinel did not switch master away from %s within %v", old, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitSettled waits until master answers as a master with one replica
// online, and every sentinel names master and knows one replica that is
// not down (SENTINEL FAILOVER needs one). Sentinels need not know each
// other yet: a forced failover asks for no vote, and they learn the new
// configuration from the hello channel of the servers they monitor.
func (s *RedisSentinel) waitSettled(master string, within time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for {
		last = s.settled(master)
		if last == "" {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("sentinel setup not settled within %v: %s", within, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// settled returns what is not settled yet, "" when all is.
func (s *RedisSentinel) settled(master string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m := redis.NewClient(&redis.Options{Addr: master, MaxRetries: -1})
	info, err := m.Info(ctx, "replication").Result()
	_ = m.Close()
	if err != nil || !strings.Contains(info, "role:master") || !strings.Contains(info, "connected_slaves:1") ||
		!strings.Contains(info, "state=online") {
		return fmt.Sprintf("%s replication: %v %q", master, err, info)
	}
	for _, p := range s.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: p.addr(), MaxRetries: -1})
		a, err := sc.GetMasterAddrByName(ctx, SentinelMasterName).Result()
		var replicas []map[string]string
		if err == nil {
			replicas, err = sc.Replicas(ctx, SentinelMasterName).Result()
		}
		_ = sc.Close()
		switch {
		case err != nil:
			return fmt.Sprintf("sentinel %s: %v", p.addr(), err)
		case net.JoinHostPort(a[0], a[1]) != master:
			return fmt.Sprintf("sentinel %s names master %v, want %s", p.addr(), a, master)
		case len(replicas) != 1 || strings.Contains(replicas[0]["flags"], "down") || replicas[0]["master-link-status"] != "ok":
			return fmt.Sprintf("sentinel %s sees replicas %v", p.addr(), replicas)
		}
	}
	return ""
}

// switched reports whether every sentinel names master and master answers
// as one.
func (s *RedisSentinel) switched(ctx context.Context, master string) bool {
	m := redis.NewClient(&redis.Options{Addr: master, MaxRetries: -1})
	info, err := m.Info(ctx, "replication").Result()
	_ = m.Close()
	if err != nil || !strings.Contains(info, "role:master") {
		return false
	}
	for _, p := range s.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: p.addr(), MaxRetries: -1})
		a, err := sc.GetMasterAddrByName(ctx, SentinelMasterName).Result()
		_ = sc.Close()
		if err != nil || net.JoinHostPort(a[0], a[1]) != master {
			return false
		}
	}
	return true
}

// WaitSettled waits until the master the sentinels name has its replica
// online again and every sentinel sees that replica up.
func (s *RedisSentinel) WaitSettled(within time.Duration) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	m, err := s.Master(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	s.waitSettled(m, within)
}
