// Command sarama_driver drives Shopify's Sarama (Debian's 1.22.1) against a broker for the
// broker's integration tests (broker/tests/real_clients/sarama.rs). It prints one JSON
// document on stdout describing what it did, and exits 1 when any step reported an error
// (the document then lists them under "errors"), 2 on bad arguments, 3 at its time limit.
//
// Modes:
//
//	produce  SyncProducer: --count keyed records ("key-<run>-<i>", "value-<run>-<i>")
//	         with --compression none|gzip|snappy|lz4; prints each record's partition and
//	         offset.
//	consume  Consumer (no group): every partition from the oldest offset to the end offset
//	         (ListOffsets latest, asked once before reading).
//	group    ConsumerGroup: consumes from the committed offsets (else the oldest), marks
//	         every record printed, stops after --max-records records or once every
//	         partition reached its end offset, closes (which commits), then reads the
//	         group's committed offsets back (OffsetFetch).
//	admin    ClusterAdmin: ListTopics, DescribeTopics and DescribeConfig of --topic, then
//	         (--create-topic) CreateTopic, DescribeTopics and DeleteTopic of that topic.
//	         Below 0.11 ListTopics and DescribeConfig are skipped (listed under
//	         "skipped"): Sarama refuses DescribeConfigs for those versions itself.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

type record struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	Value     string `json:"value"`
}

// report is the JSON document printed on stdout.
type report struct {
	Mode      string                 `json:"mode"`
	Version   string                 `json:"version"`
	Records   []record               `json:"records"`
	Committed map[string]int64       `json:"committed,omitempty"`
	Ends      map[string]int64       `json:"ends,omitempty"`
	Claims    [][]int32              `json:"claims,omitempty"`
	Admin     map[string]interface{} `json:"admin,omitempty"`
	Errors    []string               `json:"errors"`
	mu        sync.Mutex
	printed   bool
}

func (r *report) fail(format string, args ...interface{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Errors = append(r.Errors, fmt.Sprintf(format, args...))
}

// finish prints the report once and exits.
func (r *report) finish(code int) {
	r.mu.Lock()
	if r.printed {
		r.mu.Unlock()
		return
	}
	r.printed = true
	if r.Records == nil {
		r.Records = []record{}
	}
	// The same error for every record of a batch is one line, with its count.
	counts := map[string]int{}
	var distinct []string
	for _, e := range r.Errors {
		if counts[e] == 0 {
			distinct = append(distinct, e)
		}
		counts[e]++
	}
	r.Errors = []string{}
	for _, e := range distinct {
		if counts[e] > 1 {
			e = fmt.Sprintf("%s (%d times)", e, counts[e])
		}
		r.Errors = append(r.Errors, e)
	}
	out, err := json.Marshal(r)
	r.mu.Unlock()
	if err != nil {
		log.Fatalf("encode the report: %v", err)
	}
	fmt.Println(string(out))
	if code == 0 && len(r.Errors) > 0 {
		code = 1
	}
	os.Exit(code)
}

var (
	bootstrap   = flag.String("bootstrap", "", "host:port of the broker")
	versionText = flag.String("version", "1.0.0.0", "the Kafka version Sarama assumes (Config.Version: 0.10.2.0, 1.0.0, 2.1.0)")
	mode        = flag.String("mode", "", "produce, consume, group or admin")
	topic       = flag.String("topic", "", "the topic")
	group       = flag.String("group", "", "the consumer group (mode group)")
	count       = flag.Int("count", 300, "records to produce (mode produce)")
	run         = flag.String("run", "0", "tag in the produced keys and values (mode produce)")
	compression = flag.String("compression", "none", "none, gzip, snappy or lz4 (mode produce)")
	maxRecords  = flag.Int("max-records", 0, "stop after this many records (mode group; 0: at the end offsets)")
	createTopic = flag.String("create-topic", "", "topic to create, describe and delete (mode admin)")
	timeout     = flag.Duration("timeout", 60*time.Second, "overall time limit")
)

func main() {
	flag.Parse()
	rep := &report{Mode: *mode, Version: *versionText}
	if *bootstrap == "" || *mode == "" || *topic == "" {
		fmt.Fprintln(os.Stderr, "sarama_driver: --bootstrap, --mode and --topic are required")
		os.Exit(2)
	}
	version, err := sarama.ParseKafkaVersion(*versionText)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sarama_driver: %v\n", err)
		os.Exit(2)
	}
	// Sarama's own log goes to stderr, which the tests show when a run fails.
	sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)
	go func() {
		time.Sleep(*timeout)
		rep.fail("timed out after %v", *timeout)
		rep.finish(3)
	}()

	config := sarama.NewConfig()
	config.Version = version
	config.ClientID = "gregor-tests-sarama"
	config.Net.DialTimeout = 10 * time.Second
	config.Net.ReadTimeout = 30 * time.Second
	config.Net.WriteTimeout = 10 * time.Second
	config.Metadata.Retry.Max = 5
	config.Metadata.Retry.Backoff = 200 * time.Millisecond
	config.Consumer.MaxWaitTime = 200 * time.Millisecond
	config.Consumer.Return.Errors = true
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	config.Consumer.Group.Session.Timeout = 10 * time.Second
	config.Consumer.Group.Heartbeat.Interval = 1 * time.Second
	config.Admin.Timeout = 10 * time.Second

	switch *mode {
	case "produce":
		produce(config, rep)
	case "consume":
		consume(config, rep)
	case "group":
		consumeGroup(config, rep)
	case "admin":
		admin(config, rep)
	default:
		fmt.Fprintf(os.Stderr, "sarama_driver: unknown --mode %q\n", *mode)
		os.Exit(2)
	}
	rep.finish(0)
}

func produce(config *sarama.Config, rep *report) {
	codecs := map[string]sarama.CompressionCodec{
		"none":   sarama.CompressionNone,
		"gzip":   sarama.CompressionGZIP,
		"snappy": sarama.CompressionSnappy,
		"lz4":    sarama.CompressionLZ4,
	}
	codec, ok := codecs[*compression]
	if !ok {
		fmt.Fprintf(os.Stderr, "sarama_driver: unknown --compression %q\n", *compression)
		os.Exit(2)
	}
	config.Producer.Compression = codec
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Return.Successes = true
	config.Producer.Return.Errors = true
	// Sarama 1.22.1 may hand the first batch to a broker whose connection is still being
	// opened ("broker not connected", nothing sent); a retry sends it once connected.
	config.Producer.Retry.Max = 3
	config.Producer.Retry.Backoff = 100 * time.Millisecond
	// Several records per request, so that a compressed request holds real batches.
	config.Producer.Flush.Messages = 50
	config.Producer.Flush.Frequency = 20 * time.Millisecond
	producer, err := sarama.NewSyncProducer([]string{*bootstrap}, config)
	if err != nil {
		rep.fail("NewSyncProducer: %v", err)
		return
	}
	messages := make([]*sarama.ProducerMessage, *count)
	for i := range messages {
		messages[i] = &sarama.ProducerMessage{
			Topic: *topic,
			Key:   sarama.StringEncoder(fmt.Sprintf("key-%s-%d", *run, i)),
			Value: sarama.StringEncoder(fmt.Sprintf("value-%s-%d-%s", *run, i, *compression)),
		}
	}
	failed := map[*sarama.ProducerMessage]bool{}
	if err := producer.SendMessages(messages); err != nil {
		if errs, ok := err.(sarama.ProducerErrors); ok {
			for _, e := range errs {
				rep.fail("produce: %v", e.Err)
				failed[e.Msg] = true
			}
		} else {
			rep.fail("produce: %v", err)
			messages = nil
		}
	}
	for _, m := range messages {
		if failed[m] {
			continue
		}
		key, _ := m.Key.Encode()
		value, _ := m.Value.Encode()
		rep.Records = append(rep.Records, record{m.Partition, m.Offset, string(key), string(value)})
	}
	if err := producer.Close(); err != nil {
		rep.fail("close the producer: %v", err)
	}
}

// endOffsets asks ListOffsets (latest) for every partition of the topic.
func endOffsets(client sarama.Client, rep *report) (map[int32]int64, bool) {
	partitions, err := client.Partitions(*topic)
	if err != nil {
		rep.fail("partitions of %s: %v", *topic, err)
		return nil, false
	}
	ends := map[int32]int64{}
	rep.Ends = map[string]int64{}
	for _, p := range partitions {
		end, err := client.GetOffset(*topic, p, sarama.OffsetNewest)
		if err != nil {
			rep.fail("end offset of partition %d: %v", p, err)
			return nil, false
		}
		ends[p] = end
		rep.Ends[fmt.Sprint(p)] = end
	}
	return ends, true
}

func toRecord(m *sarama.ConsumerMessage) record {
	return record{m.Partition, m.Offset, string(m.Key), string(m.Value)}
}

func consume(config *sarama.Config, rep *report) {
	client, err := sarama.NewClient([]string{*bootstrap}, config)
	if err != nil {
		rep.fail("NewClient: %v", err)
		return
	}
	defer client.Close()
	ends, ok := endOffsets(client, rep)
	if !ok {
		return
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		rep.fail("NewConsumer: %v", err)
		return
	}
	defer consumer.Close()
	for p, end := range ends {
		start, err := client.GetOffset(*topic, p, sarama.OffsetOldest)
		if err != nil {
			rep.fail("start offset of partition %d: %v", p, err)
			return
		}
		if start >= end {
			continue
		}
		pc, err := consumer.ConsumePartition(*topic, p, sarama.OffsetOldest)
		if err != nil {
			rep.fail("ConsumePartition %d: %v", p, err)
			return
		}
		for next := start; next < end; {
			select {
			case m := <-pc.Messages():
				rep.Records = append(rep.Records, toRecord(m))
				next = m.Offset + 1
			case e := <-pc.Errors():
				rep.fail("partition %d: %v", p, e.Err)
				pc.Close()
				return
			}
		}
		if err := pc.Close(); err != nil {
			rep.fail("close partition consumer %d: %v", p, err)
		}
	}
}

// handler is the ConsumerGroupHandler of mode group.
type handler struct {
	rep      *report
	ends     map[int32]int64
	mu       sync.Mutex
	position map[int32]int64
	stop     context.CancelFunc
}

func (h *handler) Setup(s sarama.ConsumerGroupSession) error {
	claims := append([]int32(nil), s.Claims()[*topic]...)
	sort.Slice(claims, func(i, j int) bool { return claims[i] < claims[j] })
	h.rep.mu.Lock()
	h.rep.Claims = append(h.rep.Claims, claims)
	h.rep.mu.Unlock()
	return nil
}

func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// done: the record limit is reached, or every partition is at its end offset.
func (h *handler) done() bool {
	if *maxRecords > 0 {
		return len(h.rep.Records) >= *maxRecords
	}
	for p, end := range h.ends {
		if pos, ok := h.position[p]; !ok || pos < end {
			return false
		}
	}
	return true
}

func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	h.mu.Lock()
	h.position[claim.Partition()] = claim.InitialOffset()
	if h.done() {
		h.stop()
	}
	h.mu.Unlock()
	for m := range claim.Messages() {
		h.mu.Lock()
		if h.done() {
			h.mu.Unlock()
			return nil
		}
		h.rep.mu.Lock()
		h.rep.Records = append(h.rep.Records, toRecord(m))
		h.rep.mu.Unlock()
		s.MarkMessage(m, "")
		h.position[m.Partition] = m.Offset + 1
		if h.done() {
			h.stop()
		}
		h.mu.Unlock()
	}
	return nil
}

func consumeGroup(config *sarama.Config, rep *report) {
	client, err := sarama.NewClient([]string{*bootstrap}, config)
	if err != nil {
		rep.fail("NewClient: %v", err)
		return
	}
	defer client.Close()
	ends, ok := endOffsets(client, rep)
	if !ok {
		return
	}
	cg, err := sarama.NewConsumerGroupFromClient(*group, client)
	if err != nil {
		rep.fail("NewConsumerGroup: %v", err)
		return
	}
	go func() {
		for e := range cg.Errors() {
			rep.fail("consumer group: %v", e)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	h := &handler{rep: rep, ends: ends, position: map[int32]int64{}, stop: cancel}
	for ctx.Err() == nil {
		if err := cg.Consume(ctx, []string{*topic}, h); err != nil {
			rep.fail("Consume: %v", err)
			cancel()
		}
	}
	// Close leaves the group after the session's offset manager flushed the marks.
	if err := cg.Close(); err != nil {
		rep.fail("close the consumer group: %v", err)
	}
	// What the group has committed now, read back with OffsetFetch.
	clusterAdmin, err := sarama.NewClusterAdmin([]string{*bootstrap}, config)
	if err != nil {
		rep.fail("NewClusterAdmin: %v", err)
		return
	}
	defer clusterAdmin.Close()
	partitions := make([]int32, 0, len(ends))
	for p := range ends {
		partitions = append(partitions, p)
	}
	resp, err := clusterAdmin.ListConsumerGroupOffsets(*group, map[string][]int32{*topic: partitions})
	if err != nil {
		rep.fail("ListConsumerGroupOffsets: %v", err)
		return
	}
	rep.Committed = map[string]int64{}
	for _, p := range partitions {
		block := resp.GetBlock(*topic, p)
		if block == nil {
			rep.fail("no committed offset block for partition %d", p)
			continue
		}
		if block.Err != sarama.ErrNoError {
			rep.fail("committed offset of partition %d: %v", p, block.Err)
			continue
		}
		rep.Committed[fmt.Sprint(p)] = block.Offset
	}
}

type partitionInfo struct {
	ID       int32   `json:"id"`
	Leader   int32   `json:"leader"`
	Replicas []int32 `json:"replicas"`
	ISR      []int32 `json:"isr"`
}

func describe(clusterAdmin sarama.ClusterAdmin, name string, rep *report) []partitionInfo {
	metadata, err := clusterAdmin.DescribeTopics([]string{name})
	if err != nil {
		rep.fail("DescribeTopics %s: %v", name, err)
		return nil
	}
	var out []partitionInfo
	for _, t := range metadata {
		if t.Name != name {
			continue
		}
		if t.Err != sarama.ErrNoError {
			rep.fail("DescribeTopics %s: %v", name, t.Err)
			return nil
		}
		for _, p := range t.Partitions {
			out = append(out, partitionInfo{p.ID, p.Leader, p.Replicas, p.Isr})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func admin(config *sarama.Config, rep *report) {
	rep.Admin = map[string]interface{}{}
	clusterAdmin, err := sarama.NewClusterAdmin([]string{*bootstrap}, config)
	if err != nil {
		rep.fail("NewClusterAdmin: %v", err)
		return
	}
	defer clusterAdmin.Close()

	// Sarama refuses DescribeConfigs (which ListTopics sends too) below 0.11 itself.
	configs := config.Version.IsAtLeast(sarama.V0_11_0_0)
	if !configs {
		rep.Admin["skipped"] = []string{"ListTopics", "DescribeConfig"}
	} else if topics, err := clusterAdmin.ListTopics(); err != nil {
		rep.fail("ListTopics: %v", err)
	} else {
		listed := map[string]interface{}{}
		for name, detail := range topics {
			configs := map[string]string{}
			for k, v := range detail.ConfigEntries {
				if v != nil {
					configs[k] = *v
				}
			}
			listed[name] = map[string]interface{}{
				"partitions":         detail.NumPartitions,
				"replication_factor": detail.ReplicationFactor,
				"configs":            configs,
			}
		}
		rep.Admin["list_topics"] = listed
	}

	rep.Admin["describe_topic"] = describe(clusterAdmin, *topic, rep)

	if !configs {
		// Skipped above.
	} else if entries, err := clusterAdmin.DescribeConfig(sarama.ConfigResource{
		Type: sarama.TopicResource, Name: *topic,
	}); err != nil {
		rep.fail("DescribeConfig: %v", err)
	} else {
		configs := map[string]interface{}{}
		for _, e := range entries {
			configs[e.Name] = map[string]interface{}{
				"value": e.Value, "default": e.Default, "read_only": e.ReadOnly,
			}
		}
		rep.Admin["describe_config"] = configs
	}

	if *createTopic == "" {
		return
	}
	retention := "7200000"
	err = clusterAdmin.CreateTopic(*createTopic, &sarama.TopicDetail{
		NumPartitions:     2,
		ReplicationFactor: 1,
		ConfigEntries:     map[string]*string{"retention.ms": &retention},
	}, false)
	if err != nil {
		rep.fail("CreateTopic %s: %v", *createTopic, err)
		return
	}
	rep.Admin["created"] = describe(clusterAdmin, *createTopic, rep)
	if err := clusterAdmin.DeleteTopic(*createTopic); err != nil {
		rep.fail("DeleteTopic %s: %v", *createTopic, err)
		return
	}
	rep.Admin["deleted"] = true
}
