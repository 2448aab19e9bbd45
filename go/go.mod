module zmqnode

go 1.19
