# Run by tests/tests/gtkwave.rs: `gtkwave -S check.tcl FILE.gtkw` under Xvfb. Writes what GTKWave
# loaded (dump file, facilities, displayed traces, end time) to $ROWSIM_GTKWAVE_REPORT and quits.
set out [open $::env(ROWSIM_GTKWAVE_REPORT) w]
puts $out "dumpfile [gtkwave::getDumpFileName]"
puts $out "facilities [gtkwave::getNumFacs]"
puts $out "traces [gtkwave::getTotalNumTraces]"
puts $out "maxtime [gtkwave::getMaxTime]"
for {set i 0} {$i < [gtkwave::getNumFacs]} {incr i} {
    puts $out "fac [gtkwave::getFacName $i]"
}
for {set i 0} {$i < [gtkwave::getTotalNumTraces]} {incr i} {
    puts $out "trace [gtkwave::getTraceNameFromIndex $i]"
}
close $out
gtkwave::/File/Quit
