#!/usr/bin/env ruby
# frozen_string_literal: true

# Drives Ruby's acme-client gem (Debian's ruby-acme-client, 2.0.x) through a whole RFC 8555
# flow against an ACME server: account, order, http-01 and dns-01 through a
# pebble-challtestsrv compatible management API, finalize, download, revoke, deactivate.
# Prints one `STEP <name> ok ...` line per step; on any failure it prints
# `FAILED <step>: <error class>: <message>` and exits 1.
#
#   ruby acme_flow.rb --directory https://localhost:14000/dir --ca-file cobble-data/tls/ca.pem \
#     --challtestsrv http://127.0.0.1:8055 --issuing-root cobble-data/ca/root.pem \
#     --domain a.example.com=http-01 --domain b.example.com=dns-01
#
# Every option also reads an environment variable: ACME_DIRECTORY, ACME_CA_FILE (else
# SSL_CERT_FILE), CHALLTESTSRV_URL, ACME_ISSUING_ROOT, ACME_DOMAINS ("name=type,name=type").

require 'acme-client'
require 'json'
require 'net/http'
require 'openssl'
require 'optparse'

POLL_TRIES = 200
POLL_INTERVAL = 0.1

opts = {
  directory: ENV['ACME_DIRECTORY'],
  ca_file: ENV['ACME_CA_FILE'] || ENV['SSL_CERT_FILE'],
  challtestsrv: ENV['CHALLTESTSRV_URL'] || 'http://127.0.0.1:8055',
  issuing_root: ENV['ACME_ISSUING_ROOT'],
  contact: 'mailto:ruby@example.com',
  domains: ENV.fetch('ACME_DOMAINS', '').split(',')
}
OptionParser.new do |o|
  o.on('--directory URL', 'ACME directory URL') { |v| opts[:directory] = v }
  o.on('--ca-file PATH', 'PEM file of the HTTPS trust root') { |v| opts[:ca_file] = v }
  o.on('--challtestsrv URL', 'challtestsrv management API') { |v| opts[:challtestsrv] = v }
  o.on('--issuing-root PATH', 'verify the chain against this root') { |v| opts[:issuing_root] = v }
  o.on('--contact URI', 'account contact') { |v| opts[:contact] = v }
  o.on('--domain NAME=TYPE', 'a name and its challenge type (http-01 or dns-01)') { |v| opts[:domains] << v }
end.parse!

$step = 'arguments'

def step(name)
  $step = name
  yield
end

def ok(name, detail = '')
  puts "STEP #{name} ok #{detail}".rstrip
  $stdout.flush
end

# Bounded poll: yields until the block returns true, POLL_TRIES times POLL_INTERVAL apart.
def poll(what)
  POLL_TRIES.times do
    return if yield
    sleep POLL_INTERVAL
  end
  raise "#{what}: not done after #{POLL_TRIES} polls"
end

# POSTs JSON to the challtestsrv management API (pebble-challtestsrv's endpoints).
def challtestsrv(base, path, body)
  uri = URI("#{base}#{path}")
  res = Net::HTTP.post(uri, JSON.generate(body), 'Content-Type' => 'application/json')
  raise "challtestsrv #{path} answered #{res.code}: #{res.body}" unless res.is_a?(Net::HTTPSuccess)
end

# acme-client 2.0.9 encodes EC coordinates with BN#to_s(2), which drops leading zero bytes
# (RFC 7518 §6.2.1.2 wants the full length), so about one P-256 key in 128 makes a JWK a
# strict server rightly refuses. Keep the test deterministic: use a key without that case.
def p256_account_key
  loop do
    key = OpenSSL::PKey::EC.generate('prime256v1')
    point = key.public_key.to_bn.to_s(2)
    return key unless point[1] == "\0" || point[33] == "\0"
  end
end

begin
  step('arguments') do
    raise ArgumentError, 'need --directory (or ACME_DIRECTORY)' unless opts[:directory]
    raise ArgumentError, 'need --ca-file (or ACME_CA_FILE)' unless opts[:ca_file]
    raise ArgumentError, 'need at least one --domain NAME=TYPE' if opts[:domains].empty?
  end
  challenge_for = opts[:domains].to_h do |d|
    name, type = d.split('=', 2)
    raise ArgumentError, "challenge type of #{name} must be http-01 or dns-01, not #{type.inspect}" \
      unless %w[http-01 dns-01].include?(type)
    [name, type]
  end
  names = challenge_for.keys
  connection = { ssl: { ca_file: opts[:ca_file], verify: true } }
  key = p256_account_key
  client = Acme::Client.new(private_key: key, directory: opts[:directory], connection_options: connection)

  step('directory') do
    tos = client.terms_of_service
    ok('directory', "termsOfService=#{tos}")
  end

  kid = nil
  step('new-account') do
    account = client.new_account(contact: opts[:contact], terms_of_service_agreed: true)
    raise "account status #{account.status.inspect}, expected valid" unless account.status == 'valid'
    raise "account contact #{account.contact.inspect}" unless account.contact == [opts[:contact]]
    kid = account.kid
    ok('new-account', "kid=#{kid} status=#{account.status}")
  end

  step('fetch-account') do
    # A second client with the same key and no kid: onlyReturnExisting, then POST-as-GET on the kid.
    again = Acme::Client.new(private_key: key, directory: opts[:directory], connection_options: connection)
    account = again.account
    raise "kid #{account.kid.inspect}, expected #{kid}" unless account.kid == kid
    raise "account status #{account.status.inspect}" unless account.status == 'valid'
    raise "account contact #{account.contact.inspect}" unless account.contact == [opts[:contact]]
    ok('fetch-account', "kid=#{account.kid} status=#{account.status} contact=#{account.contact.join(',')}")
  end

  order = nil
  step('new-order') do
    order = client.new_order(identifiers: names)
    raise "order status #{order.status.inspect}, expected pending" unless order.status == 'pending'
    raise "#{order.authorization_urls.size} authorizations for #{names.size} names" \
      unless order.authorization_urls.size == names.size
    ok('new-order', "url=#{order.url} status=#{order.status} authorizations=#{order.authorization_urls.size}")
  end

  order.authorizations.each do |authz|
    type = challenge_for.fetch(authz.domain)
    step("challenge #{authz.domain}") do
      challenge = type == 'http-01' ? authz.http01 : authz.dns01
      raise "no #{type} challenge offered for #{authz.domain}" unless challenge
      if type == 'http-01'
        challtestsrv(opts[:challtestsrv], '/add-http01',
                     token: challenge.token, content: challenge.key_authorization)
      else
        challtestsrv(opts[:challtestsrv], '/set-txt',
                     host: "#{challenge.record_name}.#{authz.domain}.", value: challenge.record_content)
      end
      ok('challenge-published', "domain=#{authz.domain} type=#{type}")
      challenge.request_validation
      ok('challenge-requested', "domain=#{authz.domain} type=#{type} status=#{challenge.status}")
      poll("#{type} challenge for #{authz.domain}") do
        challenge.reload
        raise "#{type} for #{authz.domain} invalid: #{challenge.error.inspect}" if challenge.status == 'invalid'
        challenge.status == 'valid'
      end
      authz.reload
      raise "authorization #{authz.domain} is #{authz.status}" unless authz.status == 'valid'
      if type == 'http-01'
        challtestsrv(opts[:challtestsrv], '/del-http01', token: challenge.token)
      else
        challtestsrv(opts[:challtestsrv], '/clear-txt', host: "#{challenge.record_name}.#{authz.domain}.")
      end
      ok('authorization-valid', "domain=#{authz.domain} type=#{type}")
    end
  end

  step('order-ready') do
    poll('order ready') do
      order.reload
      raise "order became #{order.status}" if order.status == 'invalid'
      order.status == 'ready'
    end
    ok('order-ready', "url=#{order.url}")
  end

  csr = nil
  step('finalize') do
    csr = Acme::Client::CertificateRequest.new(names: names, private_key: OpenSSL::PKey::EC.generate('prime256v1'))
    order.finalize(csr: csr)
    ok('finalize', "status=#{order.status}")
  end

  step('order-valid') do
    poll('order valid') do
      order.reload
      raise "order became #{order.status}" if order.status == 'invalid'
      order.status == 'valid'
    end
    raise 'valid order without a certificate URL' unless order.certificate_url
    ok('order-valid', "certificate=#{order.certificate_url}")
  end

  pem = nil
  step('certificate') do
    pem = order.certificate
    chain = pem.scan(/-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?/m)
                .map { |c| OpenSSL::X509::Certificate.new(c) }
    raise "certificate response holds no certificate:\n#{pem}" if chain.empty?
    leaf = chain.first
    sans = leaf.extensions.find { |e| e.oid == 'subjectAltName' }&.value.to_s
                .split(',').map { |s| s.strip.delete_prefix('DNS:') }
    raise "leaf SANs #{sans.inspect}, expected #{names.inspect}" unless sans.sort == names.sort
    raise 'leaf key is not the CSR key' unless leaf.public_key.to_der == csr.private_key.public_to_der
    if opts[:issuing_root]
      store = OpenSSL::X509::Store.new
      store.add_file(opts[:issuing_root])
      raise "chain does not verify: #{store.error_string}" unless store.verify(leaf, chain.drop(1))
    end
    serial = leaf.serial.to_s(16).downcase.rjust(40, '0')
    ok('certificate', "serial=#{serial} chain=#{chain.size} names=#{sans.join(',')} verified=#{!opts[:issuing_root].nil?}")
    puts pem
  end

  step('revoke') do
    raise 'revokeCert did not succeed' unless client.revoke(certificate: pem, reason: 4)
    ok('revoke', 'reason=4')
  end

  step('deactivate-account') do
    account = client.account_deactivate
    raise "account status #{account.status.inspect}" unless account.status == 'deactivated'
    ok('deactivate-account', "status=#{account.status}")
  end

  step('deactivated-account-refused') do
    client.new_order(identifiers: names)
    raise 'a deactivated account placed an order'
  rescue Acme::Client::Error::Unauthorized => e
    ok('deactivated-account-refused', "error=#{e.class}")
  end

  puts 'DONE'
rescue StandardError, ScriptError => e
  warn "FAILED #{$step}: #{e.class}: #{e.message}"
  warn e.backtrace.first(8).map { |l| "  #{l}" }.join("\n")
  exit 1
end
